import { stat } from "node:fs/promises";
import { HfTokenizer } from "./hf-tokenizer.js";
import type { TextTokenizer } from "./text-tokenizer.js";
import { TIKTOKEN_ENCODINGS, TiktokenTokenizer, type TiktokenEncodingName } from "./tiktoken-tokenizer.js";
import { TokenizeError } from "./tokenize-error.js";

/**
 * Loads a tokenizer: `cl100k_base` / `o200k_base` (tiktoken) or a folder with a Hugging Face `tokenizer.json`.
 *
 * @example
 * const tok = await loadTokenizer("cl100k_base");
 * tok.encode("hello world"); // [15339, 1917]
 */
export async function loadTokenizer(spec: string): Promise<TextTokenizer> {
  if ((TIKTOKEN_ENCODINGS as readonly string[]).includes(spec)) return TiktokenTokenizer.load(spec as TiktokenEncodingName);
  const st = await stat(spec).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new TokenizeError(
      "tokenizer_invalid",
      `unknown tokenizer "${spec}". Fix: pass ${TIKTOKEN_ENCODINGS.join(" or ")}, or a folder holding a Hugging Face tokenizer.json`,
    );
  }
  return HfTokenizer.load(spec);
}
