import { z } from "zod";

/**
 * The closed set of error codes on the wire. Every HTTP error body carries one of these;
 * {@link httpStatusOf} maps each to its status, exhaustively.
 */
export const ErrorCode = z.enum([
  "unauthenticated",
  "forbidden",
  "not_found",
  "conflict",
  "lease_lost",
  "payload_too_large",
  "invalid_request",
  /** A submission that preflight shows cannot run (422; `details` holds the checks). */
  "preflight_failed",
  "rate_limited",
  "budget_exceeded",
  "unavailable",
  "internal",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** One failing field of a 422: `path` is the dotted location in the body (`spec.argv.0`). */
export const FieldIssue = z.object({ path: z.string(), message: z.string() });
export type FieldIssue = z.infer<typeof FieldIssue>;

/** The error body every non-2xx response carries. */
export const ErrorBody = z.object({
  error: z.object({ code: ErrorCode, message: z.string(), details: z.unknown().optional() }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** HTTP status for each error code. A new code fails to compile until it is mapped here. */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case "unauthenticated":
      return 401;
    case "forbidden":
      return 403;
    case "not_found":
      return 404;
    case "conflict":
    case "lease_lost":
      return 409;
    case "payload_too_large":
      return 413;
    case "invalid_request":
    case "preflight_failed":
      return 422;
    case "rate_limited":
      return 429;
    case "budget_exceeded":
      return 402;
    case "unavailable":
      return 503;
    case "internal":
      return 500;
  }
}

/** Options of a {@link ForgeError}. */
export interface ForgeErrorOptions {
  /** Structured details sent on the wire (for 422: a list of {@link FieldIssue}). */
  details?: unknown;
  /** Whether retrying the same operation may succeed. @default false */
  retryable?: boolean;
  /** Seconds a client should wait before retrying (429, 503). */
  retryAfterS?: number;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * The one in-process error type that crosses package boundaries. Carries a wire code, details,
 * and whether a retry may help.
 *
 * @example
 * throw new ForgeError("not_found", `job ${id} not found`);
 */
export class ForgeError extends Error {
  override readonly name = "ForgeError";
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly retryable: boolean;
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, options: ForgeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
    this.retryAfterS = options.retryAfterS;
  }

  /** HTTP status for this error. */
  get status(): number {
    return httpStatusOf(this.code);
  }

  /** The wire body. */
  toBody(): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

/** Turns zod issues into wire field issues (`path` dotted, root as `(body)`). */
export function fieldIssues(error: z.ZodError, prefix = ""): FieldIssue[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter((p) => p !== "").join(".");
    return { path: path === "" ? "(body)" : path, message: issue.message };
  });
}

/** A 422 naming every failing field. */
export function invalidRequest(error: z.ZodError, what = "request body", prefix = ""): ForgeError {
  const issues = fieldIssues(error, prefix);
  const summary = issues
    .slice(0, 5)
    .map((i) => `${i.path}: ${i.message}`)
    .join("; ");
  return new ForgeError("invalid_request", `invalid ${what}: ${summary}`, { details: issues });
}

/**
 * Normalises anything thrown into a {@link ForgeError} (graphile-worker's `coerceError`).
 * Unknown errors become `internal` with the original kept as `cause`.
 */
export function toForgeError(err: unknown): ForgeError {
  if (err instanceof ForgeError) return err;
  if (err instanceof z.ZodError) return invalidRequest(err);
  if (err instanceof Error) return new ForgeError("internal", err.message, { cause: err });
  return new ForgeError("internal", String(err));
}
