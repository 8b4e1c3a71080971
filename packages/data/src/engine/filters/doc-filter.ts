import { SpacyEnglishTokenizer } from "../tokenizer/spacy-english-tokenizer.js";

/** A filter's decision on one document: kept (possibly with edited text) or dropped with a reason. */
export type FilterVerdict = { keep: true; text?: string } | { keep: false; reason: string };

/** A document-level filter with datatrove's semantics and reason strings. */
export interface DocFilter {
  /** Step name used in `removed.jsonl`'s `filter` field (e.g. `gopher_quality`). */
  readonly name: string;
  /** Decide on one document's text. */
  apply(text: string): FilterVerdict;
}

/** The kept verdict without text edits (shared, allocation-free). */
export const KEEP: FilterVerdict = Object.freeze({ keep: true }) as FilterVerdict;

/** A dropped verdict. */
export function drop(reason: string): FilterVerdict {
  return { keep: false, reason };
}

/**
 * Word splitting shared by the filters of one pipeline, with the last few texts memoised
 * (datatrove's `lru_cache` on word splitting): a document run through Gopher repetition and then
 * Gopher quality is tokenized once. Words come as the tokenizer's token ids ({@link ids}); the
 * tokenizer's tables give their texts and lengths.
 */
export class WordSplitter {
  private readonly keys: string[] = [];
  private readonly values: Int32Array[] = [];
  private epoch = -1;

  constructor(readonly tokenizer: SpacyEnglishTokenizer = SpacyEnglishTokenizer.shared(), private readonly size = 4) {}

  /** Token ids of `text`'s spaCy English words (see {@link SpacyEnglishTokenizer.wordIds}). */
  ids(text: string): Int32Array {
    const tok = this.tokenizer;
    if (this.epoch === tok.epoch) {
      for (let i = 0; i < this.keys.length; i++) if (this.keys[i] === text) return this.values[i]!;
    }
    const w = tok.wordIds(text);
    // The tokenizer may have emptied its token table before this call: older ids mean nothing now.
    if (this.epoch !== tok.epoch) {
      this.keys.length = 0;
      this.values.length = 0;
      this.epoch = tok.epoch;
    }
    if (this.keys.length >= this.size) {
      this.keys.shift();
      this.values.shift();
    }
    this.keys.push(text);
    this.values.push(w);
    return w;
  }

  /** spaCy English words of `text` (datatrove's `word_tokenize`). */
  words(text: string): string[] {
    const ids = this.ids(text);
    const texts = this.tokenizer.tokenTexts;
    return Array.from(ids, (id) => texts[id]!);
  }

  /** Non-blank sentences of `text` (datatrove's `len(sent_tokenize(text))`). */
  countSentences(text: string): number {
    return this.tokenizer.countSentences(text);
  }
}
