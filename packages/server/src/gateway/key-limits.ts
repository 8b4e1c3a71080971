import { GatewayError } from "./openai-error.js";

interface Bucket {
  /** Tokens left; the token-per-minute bucket may go below zero (charged after the fact). */
  level: number;
  at: number;
}

/**
 * Per-key gateway limits as token buckets refilled continuously over a minute: `rpm` admits a
 * request when a whole request is left; `tpm` admits one while the bucket is positive and is charged
 * with the prompt + completion tokens of each finished request (so one large answer can overdraw it,
 * and the key waits until the minute's refill has paid that back). State is per control-plane process.
 */
export class KeyLimits {
  private readonly requests = new Map<string, Bucket>();
  private readonly tokens = new Map<string, Bucket>();

  /** Admits one request for `keyId` or throws a 429 with the seconds until it would be admitted. */
  admit(keyId: string, rpm: number | null | undefined, tpm: number | null | undefined, now = Date.now()): void {
    if (tpm !== null && tpm !== undefined && tpm > 0) {
      const b = refill(this.tokens, keyId, tpm, now);
      if (b.level <= 0) {
        const retryAfterS = Math.max(1, Math.ceil(((-b.level + 1) / tpm) * 60));
        throw new GatewayError(429, "rate_limit_exceeded", `this key is over its limit of ${tpm} tokens per minute; retry in ${retryAfterS}s`, { retryAfterS });
      }
    }
    if (rpm !== null && rpm !== undefined && rpm > 0) {
      const b = refill(this.requests, keyId, rpm, now);
      if (b.level < 1) {
        const retryAfterS = Math.max(1, Math.ceil(((1 - b.level) / rpm) * 60));
        throw new GatewayError(429, "rate_limit_exceeded", `this key is over its limit of ${rpm} requests per minute; retry in ${retryAfterS}s`, { retryAfterS });
      }
      b.level -= 1;
    }
  }

  /** Charges the tokens of a finished request against the key's tokens-per-minute bucket. */
  charge(keyId: string, tpm: number | null | undefined, tokens: number, now = Date.now()): void {
    if (tpm === null || tpm === undefined || tpm <= 0 || tokens <= 0) return;
    refill(this.tokens, keyId, tpm, now).level -= tokens;
  }
}

function refill(map: Map<string, Bucket>, key: string, perMinute: number, now: number): Bucket {
  let b = map.get(key);
  if (b === undefined) {
    if (map.size > 100_000) map.clear();
    b = { level: perMinute, at: now };
    map.set(key, b);
    return b;
  }
  b.level = Math.min(perMinute, b.level + ((now - b.at) / 60_000) * perMinute);
  b.at = now;
  return b;
}
