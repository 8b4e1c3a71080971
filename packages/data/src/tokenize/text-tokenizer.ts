/** Options of {@link TextTokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Add the model's own special tokens around the text (BOS, CLS/SEP: a Hugging Face post-processor).
   * Chat templates write their own, so chat text is encoded without them.
   * @default true
   */
  addSpecialTokens?: boolean;
  /**
   * Recognise special-token text (`<|im_start|>`) as the special token. Hugging Face tokenizers always do
   * (as `tokenizers` does); tiktoken encodings only when this is set (`allowed_special="all"`).
   * @default false
   */
  parseSpecial?: boolean;
}

/** A tokenizer with the identity the manifest records and the ids the trainer needs. */
export interface TextTokenizer {
  /** What the user passed: `cl100k_base`, `o200k_base` or a directory. */
  readonly spec: string;
  readonly kind: "tiktoken" | "huggingface";
  /** `sha256:<hex>` over the tokenizer's files (for tiktoken: the published rank file's digest). */
  readonly hash: string;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** Id used for padding: the configured pad token, else EOS, else 0. */
  readonly padId: number;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  /** The `chat_template` of `tokenizer_config.json`, when there is one. */
  readonly chatTemplate: string | undefined;
  /** Extra variables a chat template may read (`bos_token`, `eos_token`, `pad_token`, …). */
  readonly templateVariables: Record<string, string>;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>): string;
  /**
   * UTF-8 byte length of each token of `ids` (which must come from `encode(text)` of this tokenizer), or
   * `undefined` when the model cannot map tokens back to bytes (normalizers, WordPiece, Unigram).
   */
  tokenByteLengths(ids: ArrayLike<number>): Int32Array | undefined;
}
