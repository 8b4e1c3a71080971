import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Folder of the committed goldens (made by make_goldens.py from tiktoken / tokenizers / transformers). */
export const FIXTURES = fileURLToPath(new URL("../fixtures/tokenize/", import.meta.url));

export function readJsonl<T>(name: string): T[] {
  return readFileSync(FIXTURES + name, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

/** sha1 of the ids as uint32 little-endian, as the goldens record them. */
export function sha1Ids(ids: ArrayLike<number>): string {
  return createHash("sha1").update(new Uint8Array(Uint32Array.from(ids).buffer)).digest("hex");
}
