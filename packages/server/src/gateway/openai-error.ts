import { ForgeError, toForgeError } from "@nexa/core";

/** OpenAI's error `type` for an HTTP status. */
function typeOf(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** The OpenAI-style error body the gateway answers with: `{"error":{"message","type","code","param"}}`. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string; param: string | null; details?: unknown };
}

/**
 * A gateway failure with its HTTP status and OpenAI-style `code` (`model_not_found`,
 * `rate_limit_exceeded`, `upstream_unreachable`, `upstream_timeout`, `upstream_error`, …).
 */
export class GatewayError extends Error {
  override readonly name = "GatewayError";

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly options: { retryAfterS?: number; param?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }

  /** The wire body. */
  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: typeOf(this.status), code: this.code, param: this.options.param ?? null } };
  }
}

/** Anything thrown on a gateway path, as a {@link GatewayError} (ForgeErrors keep their status, code and field list). */
export function toGatewayError(err: unknown): { status: number; body: OpenAIErrorBody; retryAfterS: number | undefined } {
  if (err instanceof GatewayError) return { status: err.status, body: err.toBody(), retryAfterS: err.options.retryAfterS };
  const e = err as { code?: string; statusCode?: number; message?: string };
  let fe: ForgeError;
  if (err instanceof ForgeError) fe = err;
  else if (err instanceof SyntaxError || e.code === "FST_ERR_CTP_INVALID_JSON_BODY" || e.code === "FST_ERR_CTP_EMPTY_JSON_BODY")
    fe = new ForgeError("invalid_request", `request body is not valid JSON: ${e.message ?? ""}`, { details: [{ path: "(body)", message: "invalid JSON" }] });
  else if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE" || e.statusCode === 413) fe = new ForgeError("payload_too_large", e.message ?? "request body too large");
  else if (e.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || e.statusCode === 415)
    fe = new ForgeError("invalid_request", `${e.message ?? "unsupported media type"}: send JSON (application/json)`, { details: [{ path: "content-type", message: "unsupported" }] });
  else if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) fe = new ForgeError("invalid_request", e.message ?? "bad request");
  else fe = toForgeError(err);
  const details = Array.isArray(fe.details) ? (fe.details as { path?: string }[]) : undefined;
  const body: OpenAIErrorBody = { error: { message: fe.message, type: typeOf(fe.status), code: fe.code, param: details?.[0]?.path ?? null } };
  if (details !== undefined) body.error.details = details;
  return { status: fe.status, body, retryAfterS: fe.retryAfterS };
}
