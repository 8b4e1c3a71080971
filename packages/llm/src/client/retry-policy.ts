/** Options of a {@link RetryPolicy}. */
export interface RetryPolicyOptions {
  /** Retries after the first attempt. @default 5 */
  maxRetries?: number;
  /** First backoff ceiling. @default 500 */
  baseDelayMs?: number;
  /** Largest backoff ceiling. @default 30000 */
  maxDelayMs?: number;
  /** Longest `Retry-After` honoured; longer asks are capped to it. @default 120000 */
  maxRetryAfterMs?: number;
  /** Uniform random in [0, 1), for tests. @default Math.random */
  random?: () => number;
}

/** HTTP statuses worth another attempt: timeouts, conflicts, rate limits and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 425 || status === 429 || status >= 500;
}

/**
 * Parses `Retry-After` (seconds or an HTTP date) and OpenAI's `retry-after-ms` into milliseconds.
 *
 * @example
 * parseRetryAfter({ "retry-after": "2" }) // → 2000
 */
export function parseRetryAfter(headers: Record<string, string | string[] | undefined>, nowMs = Date.now()): number | undefined {
  const get = (k: string) => {
    const v = headers[k];
    return Array.isArray(v) ? v[0] : v;
  };
  const ms = get("retry-after-ms");
  if (ms !== undefined && ms.trim() !== "" && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = get("retry-after");
  if (ra === undefined || ra.trim() === "") return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Math.max(0, Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/**
 * Exponential backoff with full jitter, deferring to the server's `Retry-After` when it gives one.
 *
 * @example
 * const policy = new RetryPolicy({ maxRetries: 3 });
 * policy.delayMs(1, 2000) // → at least 2000
 */
export class RetryPolicy {
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;
  private readonly random: () => number;

  constructor(options: RetryPolicyOptions = {}) {
    this.maxRetries = options.maxRetries ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 120_000;
    this.random = options.random ?? Math.random;
  }

  /**
   * Delay before retry number `retry` (1-based). With a `Retry-After` the wait is that long plus
   * up to 10% jitter (so a storm of clients does not return in lock-step); without, a uniform
   * draw below the exponential ceiling.
   */
  delayMs(retry: number, retryAfterMs?: number): number {
    if (retryAfterMs !== undefined) {
      const ra = Math.min(retryAfterMs, this.maxRetryAfterMs);
      return ra + this.random() * Math.min(ra * 0.1, 1000);
    }
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (retry - 1));
    return this.random() * ceiling;
  }
}
