import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

/** A JSONL line that is not a JSON object. */
export class JsonlError extends Error {
  override readonly name = "JsonlError";
  readonly retryable = false;
  readonly path: string;
  readonly line: number;
  constructor(path: string, line: number, message: string, options?: { cause?: unknown }) {
    super(`${path}:${line}: ${message}`, options);
    this.path = path;
    this.line = line;
  }
}

/**
 * Reads a JSONL file of objects (blank lines skipped), streaming. Throws {@link JsonlError} with
 * the line number on a line that is not a JSON object.
 *
 * @example
 * const rows = await readJsonl("eval.jsonl");
 */
export async function readJsonl(path: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  const rl = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (line.trim() === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new JsonlError(path, n, "not valid JSON", { cause: e });
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new JsonlError(path, n, "expected a JSON object");
    rows.push(v as Record<string, unknown>);
  }
  return rows;
}

/** Serialises objects as JSONL text (one per line, trailing newline). */
export function toJsonl(items: Iterable<unknown>): string {
  let s = "";
  for (const it of items) s += `${JSON.stringify(it)}\n`;
  return s;
}
