import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { TokenizeError } from "./tokenize-error.js";
import type { EncodeOptions, TextTokenizer } from "./text-tokenizer.js";

/** Files of a Hugging Face tokenizer folder that define its behaviour (hashed into the manifest). */
const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] as const;

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

/** GPT-2's byte-to-unicode table, inverted: the byte each byte-level BPE symbol stands for. */
function byteLevelDecoder(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const map = new Map<string, number>();
  bs.forEach((b, i) => map.set(String.fromCodePoint(cs[i]!), b));
  return map;
}

/** Rust `tokenizers`' ByteLevel split regex (GPT-2), compiled by Oniguruma there. */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/**
 * `@huggingface/tokenizers` runs ByteLevel's built-in regex as a JavaScript RegExp, whose `\s` matches U+FEFF
 * and not U+0085 (Rust's is the reverse), so `"x\n\n\ufeffUNICODE"` splits differently. The same pattern
 * given as a `Split` goes through its Oniguruma translation, which agrees, but runs at half the speed; so
 * text containing either character goes to a second instance where ByteLevel(use_regex) became
 * Split + ByteLevel. Only without add_prefix_space, which Rust applies before splitting.
 */
function fixByteLevelRegex(node: unknown): unknown {
  if (!node || typeof node !== "object") return node;
  const n = node as { type?: string; use_regex?: boolean; add_prefix_space?: boolean; pretokenizers?: unknown[] };
  if (n.type === "Sequence" && Array.isArray(n.pretokenizers)) return { ...n, pretokenizers: n.pretokenizers.flatMap((p) => {
    const f = fixByteLevelRegex(p) as { type?: string; pretokenizers?: unknown[] };
    return f !== p && f.type === "Sequence" ? (f.pretokenizers ?? []) : [f];
  }) };
  if (n.type === "ByteLevel" && n.use_regex !== false && !n.add_prefix_space) {
    return {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: GPT2_PATTERN }, behavior: "Isolated", invert: false },
        { ...n, use_regex: false },
      ],
    };
  }
  return node;
}

function tokenText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return undefined;
}

function hasByteLevel(node: unknown): boolean {
  if (!node || typeof node !== "object") return false;
  const n = node as { type?: string; pretokenizers?: unknown[]; decoders?: unknown[] };
  if (n.type === "ByteLevel") return true;
  return [...(n.pretokenizers ?? []), ...(n.decoders ?? [])].some(hasByteLevel);
}

/**
 * A Hugging Face `tokenizer.json` (BPE including byte-level, WordPiece, Unigram, as far as
 * `@huggingface/tokenizers` supports them) with its added and special tokens, plus `tokenizer_config.json`
 * (BOS/EOS/pad tokens, chat template).
 */
export class HfTokenizer implements TextTokenizer {
  readonly kind = "huggingface" as const;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly chatTemplate: string | undefined;
  readonly templateVariables: Record<string, string>;
  readonly #tok: Tokenizer;
  readonly #exactJson: Record<string, unknown> | undefined;
  readonly #config: Record<string, unknown>;
  #exact: Tokenizer | undefined;
  readonly #byteLevel: boolean;
  readonly #added: Map<number, string>;
  #symbolBytes: Int32Array | undefined;

  private constructor(
    readonly spec: string,
    readonly hash: string,
    tokenizerJson: Record<string, unknown>,
    config: Record<string, unknown>,
  ) {
    this.#tok = new Tokenizer(tokenizerJson, config);
    this.#config = config;
    const fixed = fixByteLevelRegex(tokenizerJson.pre_tokenizer);
    this.#exactJson = fixed === tokenizerJson.pre_tokenizer ? undefined : { ...tokenizerJson, pre_tokenizer: fixed };
    const added = (tokenizerJson.added_tokens as AddedTokenJson[] | undefined) ?? [];
    this.#added = new Map(added.map((t) => [t.id, t.content]));
    this.#byteLevel =
      hasByteLevel(tokenizerJson.pre_tokenizer) && hasByteLevel(tokenizerJson.decoder) && !tokenizerJson.normalizer;
    this.vocabSize = this.#tok.get_vocab(true).size;
    this.bosToken = tokenText(config.bos_token);
    this.eosToken = tokenText(config.eos_token);
    const pad = tokenText(config.pad_token);
    const id = (t: string | undefined) => (t === undefined ? undefined : this.#tok.token_to_id(t));
    this.bosId = id(this.bosToken);
    this.eosId = id(this.eosToken);
    this.padId = id(pad) ?? this.eosId ?? 0;
    const template = config.chat_template;
    this.chatTemplate =
      typeof template === "string"
        ? template
        : Array.isArray(template)
          ? (template as { name?: string; template?: string }[]).find((t) => t.name === "default")?.template
          : undefined;
    this.templateVariables = {};
    for (const [k, v] of Object.entries(config)) {
      const s = k.endsWith("_token") ? tokenText(v) : undefined;
      if (s !== undefined) this.templateVariables[k] = s;
    }
  }

  /** Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional) from `dir`. */
  static async load(dir: string): Promise<HfTokenizer> {
    const hash = createHash("sha256");
    const texts: Partial<Record<(typeof TOKENIZER_FILES)[number], string>> = {};
    for (const name of TOKENIZER_FILES) {
      let text: string;
      try {
        text = await readFile(join(dir, name), "utf8");
      } catch (err) {
        if (name === "tokenizer.json") {
          throw new TokenizeError(
            "tokenizer_invalid",
            `no tokenizer.json in ${dir}. Fix: pass --tokenizer cl100k_base, o200k_base or a folder holding a Hugging Face tokenizer.json`,
            { cause: err },
          );
        }
        continue;
      }
      texts[name] = text;
      hash.update(`${name}\0${createHash("sha256").update(text).digest("hex")}\n`);
    }
    const parse = (name: string, text: string | undefined): Record<string, unknown> => {
      if (text === undefined) return {};
      try {
        const v: unknown = JSON.parse(text);
        if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
        return v as Record<string, unknown>;
      } catch (err) {
        throw new TokenizeError(
          "tokenizer_invalid",
          `${join(dir, name)} does not parse (${(err as Error).message}). Fix: replace it with the model's original file`,
          { cause: err },
        );
      }
    };
    const tj = parse("tokenizer.json", texts["tokenizer.json"]);
    const config = { ...parse("special_tokens_map.json", texts["special_tokens_map.json"]), ...parse("tokenizer_config.json", texts["tokenizer_config.json"]) };
    if (!tj.model || typeof tj.model !== "object") {
      throw new TokenizeError("tokenizer_invalid", `${join(dir, "tokenizer.json")} has no "model". Fix: use a tokenizer.json saved by Hugging Face tokenizers`);
    }
    try {
      return new HfTokenizer(dir, `sha256:${hash.digest("hex")}`, tj, config);
    } catch (err) {
      if (err instanceof TokenizeError) throw err;
      throw new TokenizeError(
        "tokenizer_invalid",
        `${join(dir, "tokenizer.json")} is not a tokenizer @huggingface/tokenizers can load (${(err as Error).message}). Fix: use a BPE, WordPiece or Unigram tokenizer.json`,
        { cause: err },
      );
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    let tok = this.#tok;
    if (this.#exactJson && /[\u0085\ufeff]/.test(text)) tok = this.#exact ??= new Tokenizer(this.#exactJson, this.#config);
    return tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>): string {
    return this.#tok.decode(Array.from(ids), { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenByteLengths(ids: ArrayLike<number>): Int32Array | undefined {
    if (!this.#byteLevel) return undefined;
    if (!this.#symbolBytes) {
      const dec = byteLevelDecoder();
      const table = new Int32Array(this.vocabSize + 1).fill(-1);
      for (const [token, id] of this.#tok.get_vocab(true)) {
        if (id >= table.length) continue;
        const added = this.#added.get(id);
        if (added !== undefined) {
          table[id] = Buffer.byteLength(added);
          continue;
        }
        let n = 0;
        for (const ch of token) {
          if (!dec.has(ch)) {
            n = -1;
            break;
          }
          n++;
        }
        table[id] = n;
      }
      this.#symbolBytes = table;
    }
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const n = this.#symbolBytes[ids[i]!] ?? -1;
      if (n < 0) return undefined;
      out[i] = n;
    }
    return out;
  }
}
