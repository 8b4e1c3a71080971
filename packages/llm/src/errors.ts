/** Why a model request failed. */
export type LlmErrorCode =
  | "http_error"
  | "timeout"
  | "network"
  | "invalid_response"
  | "aborted"
  | "structured_output_invalid"
  | "judge_parse_failure";

/** Options of an {@link LlmError}. */
export interface LlmErrorOptions {
  /** Base URL of the endpoint (never its key). */
  endpoint?: string;
  model?: string;
  /** The last HTTP status received, if any. */
  status?: number;
  /** Attempts made (1 = no retry). */
  attempts?: number;
  retryable?: boolean;
  cause?: unknown;
}

/**
 * A failed model request, naming the endpoint, the model and the last status — the message a user
 * needs to tell a wrong URL from a quota problem.
 *
 * @example
 * try { await client.chat({ messages }); } catch (e) { if (e instanceof LlmError && e.retryable) … }
 */
export class LlmError extends Error {
  override readonly name: string = "LlmError";
  readonly code: LlmErrorCode;
  readonly endpoint: string | undefined;
  readonly model: string | undefined;
  readonly status: number | undefined;
  readonly attempts: number;
  readonly retryable: boolean;

  constructor(code: LlmErrorCode, message: string, options: LlmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.endpoint = options.endpoint;
    this.model = options.model;
    this.status = options.status;
    this.attempts = options.attempts ?? 1;
    this.retryable = options.retryable ?? false;
  }
}

/** A reply that does not satisfy the requested JSON schema after the allowed repairs. */
export class StructuredOutputError extends LlmError {
  override readonly name = "StructuredOutputError";
  /** The last reply text. */
  readonly reply: string;
  /** Validation errors of the last reply. */
  readonly errors: string[];

  constructor(message: string, reply: string, errors: string[], options: LlmErrorOptions = {}) {
    super("structured_output_invalid", message, { retryable: false, ...options });
    this.reply = reply;
    this.errors = errors;
  }
}

/** Turns anything thrown into a short string for logs and per-sample records. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
