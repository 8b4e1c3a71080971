import { createHash } from "node:crypto";

/**
 * JSON with object keys sorted at every level, so equal requests serialise equally whatever the
 * order their fields were written in. `undefined` members are dropped, as JSON.stringify does.
 *
 * @example
 * canonicalJson({ b: 1, a: [true, null] }) // → '{"a":[true,null],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    const s = JSON.stringify(value);
    return s === undefined ? "null" : s;
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const keys = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
}

/**
 * The hash of a request body: hex SHA-256 of its {@link canonicalJson}. The stand-in server counts
 * requests by this hash, and the request cache keys entries by it.
 *
 * @example
 * requestHash({ model: "m", messages: [{ role: "user", content: "hi" }] }) // → "3f1c…"
 */
export function requestHash(body: unknown): string {
  return createHash("sha256").update(canonicalJson(body)).digest("hex");
}
