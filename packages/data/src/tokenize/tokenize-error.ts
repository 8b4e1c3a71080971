/** Machine-readable reason of a {@link TokenizeError}. */
export type TokenizeErrorCode =
  | "tokenizer_invalid"
  | "record_invalid"
  | "unknown_role"
  | "no_assistant_turn"
  | "template_failed"
  | "seq_len_too_small"
  | "input_invalid"
  | "output_failed";

/**
 * An error of the tokenize/format/pack stage. `message` names the record (file and line, or id) and the fix;
 * `retryable` is false: the same input fails the same way.
 */
export class TokenizeError extends Error {
  readonly code: TokenizeErrorCode;
  readonly retryable = false;
  /** `file:line` or record id of the offending record, when there is one. */
  readonly record: string | undefined;

  constructor(code: TokenizeErrorCode, message: string, options: { record?: string; cause?: unknown } = {}) {
    super(options.record ? `${options.record}: ${message}` : message, { cause: options.cause });
    this.name = "TokenizeError";
    this.code = code;
    this.record = options.record;
  }
}
