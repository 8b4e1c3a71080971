/** Where a bad record sits. */
export interface RecordLocation {
  file: string;
  /** 1-based line (JSONL) or row (Parquet). */
  line?: number;
  /** Parquet row group, 0-based. */
  rowGroup?: number;
  field?: string;
}

/**
 * A record that cannot be read: not JSON, invalid UTF-8, a missing or non-string text field, a
 * truncated gzip or Parquet file. The message names file, line (or row group) and field, and
 * says how to fix it.
 */
export class RecordError extends Error {
  override readonly name = "RecordError";
  readonly retryable = false;

  constructor(
    readonly kind: "invalid_json" | "invalid_utf8" | "missing_field" | "not_a_string" | "not_an_object" | "truncated" | "unreadable",
    readonly location: RecordLocation,
    detail: string,
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    const where = [
      location.file,
      location.line !== undefined ? `line ${location.line}` : undefined,
      location.rowGroup !== undefined ? `row group ${location.rowGroup}` : undefined,
      location.field !== undefined ? `field "${location.field}"` : undefined,
    ]
      .filter(Boolean)
      .join(", ");
    super(`${where}: ${detail}. ${hint}`, options);
  }
}
