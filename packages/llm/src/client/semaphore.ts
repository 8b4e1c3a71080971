/**
 * Bounded concurrency: at most `limit` holders at once, served in arrival order.
 *
 * @example
 * const sem = new Semaphore(8);
 * const release = await sem.acquire();
 * try { … } finally { release(); }
 */
export class Semaphore {
  readonly limit: number;
  private active = 0;
  private readonly waiters: { resolve: (release: () => void) => void; reject: (e: unknown) => void; signal?: AbortSignal; onAbort?: () => void }[] = [];

  constructor(limit: number) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError("limit must be an integer >= 1");
    this.limit = limit;
  }

  /** Holders now. */
  get inUse(): number {
    return this.active;
  }

  /** A slot's release function when one is free now (no waiting, no promise), else undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.limit || this.waiters.length > 0) return undefined;
    this.active++;
    return this.releaser();
  }

  /** Waits for a slot; resolves to its release function (call it exactly once). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const w: (typeof this.waiters)[number] = { resolve, reject };
      if (signal) {
        w.signal = signal;
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) {
        if (next.signal && next.onAbort) next.signal.removeEventListener("abort", next.onAbort);
        next.resolve(this.releaser());
      } else this.active--;
    };
  }
}
