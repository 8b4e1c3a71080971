import { Ajv, type ValidateFunction } from "ajv";

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new WeakMap<object, ValidateFunction>();

/**
 * Validates a value against a JSON schema (draft-07 / 2019 subset that Ajv supports).
 * Returns human-readable errors; an empty list means valid. Compiled schemas are memoised.
 *
 * @example
 * validateJsonSchema({ type: "object", required: ["a"] }, {}) // → ["/ must have required property 'a'"]
 */
export function validateJsonSchema(schema: Record<string, unknown>, value: unknown): string[] {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`);
}

/**
 * Pulls a JSON value out of a model reply: the whole text, else a fenced ```json block, else the
 * outermost {...} or [...] span. Returns undefined when nothing parses.
 *
 * @example
 * extractJson('Sure! ```json\n{"score": 7}\n```') // → { score: 7 }
 */
export function extractJson(text: string): unknown {
  const attempts: string[] = [text.trim()];
  const fence = /```(?:json|JSON)?\s*\n?([\s\S]*?)```/.exec(text);
  if (fence?.[1]) attempts.push(fence[1].trim());
  for (const [open, close] of [
    ["{", "}"],
    ["[", "]"],
  ] as const) {
    const a = text.indexOf(open);
    const b = text.lastIndexOf(close);
    if (a >= 0 && b > a) attempts.push(text.slice(a, b + 1));
  }
  for (const s of attempts) {
    if (s === "") continue;
    try {
      return JSON.parse(s) as unknown;
    } catch {
      /* try the next candidate */
    }
  }
  return undefined;
}
