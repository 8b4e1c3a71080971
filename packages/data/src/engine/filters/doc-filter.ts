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
 * Gopher quality is tokenized once.
 */
export class WordSplitter {
  private readonly keys: string[] = [];
  private readonly values: string[][] = [];

  constructor(readonly tokenizer: SpacyEnglishTokenizer = SpacyEnglishTokenizer.shared(), private readonly size = 4) {}

  /** spaCy English words of `text` (datatrove's `word_tokenize`). */
  words(text: string): string[] {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] === text) return this.values[i]!;
    const w = this.tokenizer.words(text);
    if (this.keys.length >= this.size) {
      this.keys.shift();
      this.values.shift();
    }
    this.keys.push(text);
    this.values.push(w);
    return w;
  }

  /** Non-blank sentences of `text` (datatrove's `len(sent_tokenize(text))`). */
  countSentences(text: string): number {
    return this.tokenizer.countSentences(text);
  }
}
