import { get_encoding, type Tiktoken } from "tiktoken";
import type { EncodeOptions, TextTokenizer } from "./text-tokenizer.js";
import { TiktokenBpe } from "./tiktoken-bpe.js";

/** The tiktoken encodings shipped with the npm packages. */
export const TIKTOKEN_ENCODINGS = ["cl100k_base", "o200k_base"] as const;
export type TiktokenEncodingName = (typeof TIKTOKEN_ENCODINGS)[number];

/** SHA-256 of OpenAI's published `.tiktoken` rank files (the npm ranks rebuild to exactly these bytes). */
const RANK_FILE_SHA256: Record<TiktokenEncodingName, string> = {
  cl100k_base: "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
  o200k_base: "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
};

/** The characters whose `\s` membership differs between JavaScript and Rust regexes. */
export const JS_RUST_SPACE_DIFF = /[\u0085\ufeff]/;

/** Special tokens of each encoding (tiktoken's), for `vocabSize`. */
const SPECIAL_IDS: Record<TiktokenEncodingName, number[]> = {
  cl100k_base: [100257, 100258, 100259, 100260, 100276],
  o200k_base: [199999, 200018],
};

/**
 * A tiktoken encoding. Ids equal OpenAI `tiktoken`'s: text is encoded by {@link TiktokenBpe} (tiktoken's
 * ranks and merge algorithm over typed arrays; faster than gpt-tokenizer, ai-tokenizer, js-tiktoken and the
 * `tiktoken` WASM build on the fixture corpus, bench/pack), except text containing U+FEFF or U+0085: JavaScript's
 * `\s` matches U+FEFF but not U+0085 (Rust's is the reverse), so `" \u0085x"` splits differently. That text,
 * and special-token parsing, go to the `tiktoken` WASM build, which runs OpenAI's own Rust code.
 */
export class TiktokenTokenizer implements TextTokenizer {
  readonly kind = "tiktoken" as const;
  readonly hash: string;
  readonly vocabSize: number;
  readonly bosId = undefined;
  readonly bosToken = undefined;
  readonly eosId: number;
  readonly eosToken = "<|endoftext|>";
  readonly padId: number;
  readonly chatTemplate = undefined;
  readonly templateVariables: Record<string, string>;
  #wasm: Tiktoken | undefined;
  #byteLengths: Int32Array | undefined;

  private constructor(
    readonly spec: TiktokenEncodingName,
    private readonly fast: TiktokenBpe,
  ) {
    this.hash = `sha256:${RANK_FILE_SHA256[spec]}`;
    this.eosId = spec === "cl100k_base" ? 100257 : 199999;
    this.padId = this.eosId;
    // tiktoken's n_vocab: the largest id, special tokens included, plus one (what an embedding table needs).
    this.vocabSize = Math.max(fast.size, ...SPECIAL_IDS[spec].map((id) => id + 1));
    this.templateVariables = { eos_token: this.eosToken, pad_token: this.eosToken };
  }

  /** Loads an encoding by name (each instance has its own merge cache). */
  static load(name: TiktokenEncodingName): Promise<TiktokenTokenizer> {
    return Promise.resolve(new TiktokenTokenizer(name, TiktokenBpe.load(name)));
  }

  private wasm(): Tiktoken {
    this.#wasm ??= get_encoding(this.spec);
    return this.#wasm;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    // Special-token text is rare (rendered chat templates): the WASM build parses it as tiktoken does.
    if (options.parseSpecial) return Array.from(this.wasm().encode(text, "all"));
    if (JS_RUST_SPACE_DIFF.test(text)) return Array.from(this.wasm().encode_ordinary(text));
    return this.fast.encodeOrdinary(text);
  }

  decode(ids: ArrayLike<number>): string {
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(this.wasm().decode(Uint32Array.from(ids as ArrayLike<number>)));
  }

  tokenByteLengths(ids: ArrayLike<number>): Int32Array {
    this.#byteLengths ??= new Int32Array(this.vocabSize + 1024).fill(-1);
    const table = this.#byteLengths;
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      let n = id < table.length ? table[id]! : -1;
      if (n < 0) {
        n = this.wasm().decode_single_token_bytes(id).length;
        if (id < table.length) table[id] = n;
      }
      out[i] = n;
    }
    return out;
  }
}
