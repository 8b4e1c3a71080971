import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32, lower case

let lastMs = 0;
let lastRand = new Uint8Array(10);

/**
 * A time-sortable id (ULID layout: 48-bit ms timestamp + 80 random bits, monotonic within a
 * millisecond), prefixed by kind: `job_01j…`. Sorting ids sorts by creation, which keyset
 * pagination relies on.
 */
export function newId(prefix: string): string {
  let ms = Date.now();
  if (ms <= lastMs) {
    ms = lastMs;
    // Same millisecond: increment the random part so ids stay strictly increasing.
    const r = lastRand;
    for (let i = r.length - 1; i >= 0; i--) {
      r[i] = (r[i]! + 1) & 0xff;
      if (r[i] !== 0) break;
    }
  } else {
    lastMs = ms;
    lastRand = new Uint8Array(randomBytes(10));
  }
  let time = "";
  let t = ms;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  let rand = "";
  let bits = 0;
  let acc = 0;
  for (const byte of lastRand) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      rand += ALPHABET[(acc >> (bits - 5)) & 31]!;
      bits -= 5;
    }
  }
  return `${prefix}_${time}${rand}`;
}
