import { setTimeout as sleep } from "node:timers/promises";

/** Options of a {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Most tokens held at once (the burst). @default ratePerSecond (one second's worth), at least 1 */
  capacity?: number;
  /** Clock, for tests. @default performance.now */
  now?: () => number;
}

/**
 * A token bucket: over any window of T seconds at most `capacity + rate·T` tokens are taken.
 * Waiters are served first in, first out, so a large request is not starved by small ones. A take
 * larger than the capacity waits for a full bucket and leaves it in debt, which later takes repay.
 *
 * @example
 * const rpm = new TokenBucket({ ratePerSecond: 600 / 60 });
 * await rpm.take(1, signal);
 */
export class TokenBucket {
  readonly rate: number;
  readonly capacity: number;
  private tokens: number;
  private last: number;
  private readonly now: () => number;
  private queue: Promise<void> = Promise.resolve();

  constructor(options: TokenBucketOptions) {
    if (!(options.ratePerSecond > 0)) throw new RangeError("ratePerSecond must be positive");
    this.rate = options.ratePerSecond / 1000;
    this.capacity = Math.max(1, options.capacity ?? options.ratePerSecond);
    this.now = options.now ?? (() => performance.now());
    this.tokens = this.capacity;
    this.last = this.now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (t - this.last) * this.rate);
    this.last = t;
  }

  /** Tokens available now (negative while in debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Waits until `n` tokens (or a full bucket, if n exceeds it) can be taken, then takes them. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    const run = this.queue.then(() => this.takeNow(n, signal));
    // The chain continues whether this waiter succeeded or was aborted.
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async takeNow(n: number, signal?: AbortSignal): Promise<void> {
    const need = Math.min(n, this.capacity);
    for (;;) {
      signal?.throwIfAborted();
      this.refill();
      if (this.tokens >= need) {
        this.tokens -= n;
        return;
      }
      const waitMs = Math.max(1, Math.ceil((need - this.tokens) / this.rate));
      await sleep(waitMs, undefined, signal ? { signal } : undefined);
    }
  }

  /** Adjusts the balance after the fact (e.g. the real token count once a reply arrives). */
  adjust(delta: number): void {
    this.refill();
    this.tokens = Math.min(this.capacity, this.tokens - delta);
  }
}
