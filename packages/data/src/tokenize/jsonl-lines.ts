import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { TokenizeError } from "./tokenize-error.js";

/** Digest and size of one input file, for the manifest. */
export interface SourceDigest {
  path: string;
  sha256: string;
  bytes: number;
  lines: number;
}

/**
 * Streams a JSONL file as batches of lines (split on `\n`, a trailing `\r` removed), hashing it on the way.
 * `digest` is filled in once the last batch has been yielded.
 */
export async function* jsonlLineBatches(path: string, batchLines: number, digest: Partial<SourceDigest>): AsyncGenerator<{ firstLine: number; lines: string[] }> {
  const st = await stat(path).catch((err: unknown) => {
    throw new TokenizeError("input_invalid", `cannot read input ${path} (${(err as Error).message}). Fix: pass an existing .jsonl file`, { cause: err });
  });
  if (!st.isFile()) throw new TokenizeError("input_invalid", `input ${path} is not a file. Fix: pass a .jsonl file`);
  const hash = createHash("sha256");
  const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: false });
  let rest = "";
  let line = 1;
  let batch: string[] = [];
  let first = 1;
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    bytes += buf.length;
    const text = rest + decoder.decode(buf, { stream: true });
    const parts = text.split("\n");
    rest = parts.pop()!;
    for (const p of parts) {
      batch.push(p.endsWith("\r") ? p.slice(0, -1) : p);
      line++;
      if (batch.length >= batchLines) {
        yield { firstLine: first, lines: batch };
        batch = [];
        first = line;
      }
    }
  }
  rest += decoder.decode();
  if (rest.length > 0) {
    batch.push(rest.endsWith("\r") ? rest.slice(0, -1) : rest);
    line++;
  }
  if (batch.length > 0) yield { firstLine: first, lines: batch };
  Object.assign(digest, { path, sha256: `sha256:${hash.digest("hex")}`, bytes, lines: line - 1 });
}
