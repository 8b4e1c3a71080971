import { StructuredOutputError } from "../errors.js";
import { extractJson, validateJsonSchema } from "./json-schema.js";
import type { CallOptions, ChatResult, OpenAIClient } from "./openai-client.js";
import type { ChatMessage, ChatRequest } from "./types.js";

/** Options of {@link chatJson}. */
export interface ChatJsonOptions extends CallOptions {
  /** JSON schema the reply must satisfy. */
  schema: Record<string, unknown>;
  /** Schema name sent in `response_format`. @default "output" */
  name?: string;
  /** Follow-up turns asking the model to fix an invalid reply. @default 2 */
  maxRepairs?: number;
  /** Send `response_format: json_schema` (servers without structured output: set false). @default true */
  responseFormat?: boolean;
}

/** The result of {@link chatJson}. */
export interface ChatJsonResult<T = unknown> {
  value: T;
  /** Raw reply text that parsed. */
  text: string;
  /** Replies asked for (1 = valid first time). */
  tries: number;
  /** Every exchange, in order (for usage and audit). */
  results: ChatResult[];
}

/**
 * Asks for JSON matching a schema: sends `response_format: {type: "json_schema"}`, parses the
 * reply (tolerating code fences and surrounding prose), validates it, and on failure asks the model
 * to repair its answer, showing it the validation errors. Throws {@link StructuredOutputError}
 * when the repairs are used up.
 *
 * @example
 * const { value } = await chatJson(client, { messages }, { schema: { type: "object", properties: { answer: { type: "string" } }, required: ["answer"] } });
 */
export async function chatJson<T = unknown>(client: OpenAIClient, request: ChatRequest, options: ChatJsonOptions): Promise<ChatJsonResult<T>> {
  const maxRepairs = options.maxRepairs ?? 2;
  const messages: ChatMessage[] = [...request.messages];
  const results: ChatResult[] = [];
  const rf =
    options.responseFormat === false
      ? {}
      : { response_format: { type: "json_schema" as const, json_schema: { name: options.name ?? "output", schema: options.schema, strict: true } } };
  let lastText = "";
  let lastErrors: string[] = [];
  for (let tryNo = 0; tryNo <= maxRepairs; tryNo++) {
    const call: CallOptions = {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.noCache ? { noCache: true } : {}),
      cacheSalt: `${options.cacheSalt ?? ""}#json${tryNo}`,
    };
    const r = await client.chat({ ...request, ...rf, messages }, call);
    results.push(r);
    lastText = r.text;
    const value = extractJson(r.text);
    lastErrors = value === undefined ? ["reply is not JSON"] : validateJsonSchema(options.schema, value);
    if (lastErrors.length === 0) return { value: value as T, text: r.text, tries: tryNo + 1, results };
    messages.push(
      { role: "assistant", content: r.text },
      {
        role: "user",
        content:
          `Your reply did not match the required JSON schema: ${lastErrors.slice(0, 5).join("; ")}. ` +
          `Reply again with only a JSON value matching this schema:\n${JSON.stringify(options.schema)}`,
      },
    );
  }
  throw new StructuredOutputError(
    `${client.options.baseUrl} (model ${request.model ?? client.options.model ?? "?"}) gave no valid JSON after ${maxRepairs + 1} tries: ${lastErrors.join("; ")}`,
    lastText,
    lastErrors,
    { endpoint: client.options.baseUrl, ...(request.model ?? client.options.model ? { model: (request.model ?? client.options.model)! } : {}), attempts: maxRepairs + 1 },
  );
}
