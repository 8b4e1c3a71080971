import { createHash } from "node:crypto";

/**
 * A Bloom filter sized from the expected number of items and the false-positive rate (Dolma's
 * sizing: m = -n ln p / (ln 2)^2 bits, k = (m / n) ln 2 hashes), with double hashing over a
 * SHA-256 digest. Used for exact URL or paragraph dedup over more items than fit in a Set.
 */
export class BloomFilter {
  readonly bits: number;
  readonly hashes: number;
  private readonly data: Uint8Array;

  constructor(expectedItems: number, falsePositiveRate = 1e-4) {
    if (!(expectedItems > 0)) throw new RangeError("expectedItems must be > 0");
    if (!(falsePositiveRate > 0 && falsePositiveRate < 1)) throw new RangeError("falsePositiveRate must be in (0, 1)");
    this.bits = Math.max(64, Math.ceil((-expectedItems * Math.log(falsePositiveRate)) / Math.LN2 ** 2));
    this.hashes = Math.max(1, Math.round((this.bits / expectedItems) * Math.LN2));
    this.data = new Uint8Array(Math.ceil(this.bits / 8));
  }

  /** Bytes of memory the bit array holds. */
  get byteLength(): number {
    return this.data.byteLength;
  }

  private positions(item: string): number[] {
    const d = createHash("sha256").update(item, "utf8").digest();
    const h1 = d.readUInt32LE(0) * 2 ** 21 + (d.readUInt32LE(4) >>> 11);
    const h2 = d.readUInt32LE(8) * 2 ** 21 + (d.readUInt32LE(12) >>> 11) + 1;
    const out: number[] = [];
    for (let i = 0; i < this.hashes; i++) out.push((h1 + i * h2) % this.bits);
    return out;
  }

  /** Whether the item may have been added (false positives at the configured rate, no false negatives). */
  has(item: string): boolean {
    for (const p of this.positions(item)) if ((this.data[p >>> 3]! & (1 << (p & 7))) === 0) return false;
    return true;
  }

  /** Add an item; returns whether it was (probably) present before. */
  add(item: string): boolean {
    let present = true;
    for (const p of this.positions(item)) {
      const byte = p >>> 3;
      const bit = 1 << (p & 7);
      if ((this.data[byte]! & bit) === 0) {
        present = false;
        this.data[byte]! |= bit;
      }
    }
    return present;
  }
}
