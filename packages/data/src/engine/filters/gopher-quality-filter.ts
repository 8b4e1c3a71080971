import { z } from "zod";
import { PUNCTUATION_SET } from "../text/simplify-text.js";
import { hasAlpha, pyCount, pyLstrip, pyRstrip, pySplitlines } from "../text/py-str.js";
import { type DocFilter, drop, type FilterVerdict, KEEP, WordSplitter } from "./doc-filter.js";

/** Options of {@link GopherQualityFilter}; `null` disables a rule. Defaults are datatrove's. */
export const GopherQualityOptions = z.strictObject({
  /** @default 50 */
  min_doc_words: z.number().int().nullable().default(50),
  /** @default 100000 */
  max_doc_words: z.number().int().nullable().default(100_000),
  /** @default 3 */
  min_avg_word_length: z.number().nullable().default(3),
  /** @default 10 */
  max_avg_word_length: z.number().nullable().default(10),
  /** @default 0.1 */
  max_symbol_word_ratio: z.number().nullable().default(0.1),
  /** @default 0.9 */
  max_bullet_lines_ratio: z.number().nullable().default(0.9),
  /** @default 0.3 */
  max_ellipsis_lines_ratio: z.number().nullable().default(0.3),
  /** @default 0.8 */
  max_non_alpha_words_ratio: z.number().nullable().default(0.8),
  /** @default 2 */
  min_stop_words: z.number().int().nullable().default(2),
  /** @default ["the","be","to","of","and","that","have","with"] */
  stop_words: z.array(z.string()).default(["the", "be", "to", "of", "and", "that", "have", "with"]),
});
export type GopherQualityOptions = z.input<typeof GopherQualityOptions>;

// PUNCTUATION_SET's BMP members as a table; its few astral members (terminal marks) are looked up in the set.
const BMP_PUNCT = new Uint8Array(65536);
for (const ch of PUNCTUATION_SET) if (ch.length === 1) BMP_PUNCT[ch.charCodeAt(0)] = 1;

/** Every code point of `w` is in PUNCTUATION_SET. */
function isSymbolWord(w: string): boolean {
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < w.length) {
      const d = w.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        if (!PUNCTUATION_SET.has(w.slice(i, i + 2))) return false;
        i++;
        continue;
      }
    }
    if (BMP_PUNCT[c] !== 1) return false;
  }
  return true;
}

/**
 * datatrove's `GopherQualityFilter` (Gopher, Rae et al. 2021, Table A1): word count and mean
 * word length bounds, `#` and ellipsis ratios, bullet and trailing-ellipsis line ratios, share of
 * words with a letter, stop-word presence. Reasons: `gopher_short_doc`, `gopher_long_doc`,
 * `gopher_below_avg_threshold`, `gopher_above_avg_threshold`, `gopher_too_many_hashes`,
 * `gopher_too_many_ellipsis`, `gopher_too_many_bullets`, `gopher_too_many_end_ellipsis`,
 * `gopher_below_alpha_threshold`, `gopher_enough_stop_words`.
 */
export class GopherQualityFilter implements DocFilter {
  readonly name = "gopher_quality";
  private readonly o: z.output<typeof GopherQualityOptions>;
  private readonly stop: Set<string>;

  /** Per token id of the splitter's tokenizer: KNOWN plus the word's flags, 0 until first seen. */
  private props: Uint8Array = new Uint8Array(0);
  private propsEpoch = -1;

  constructor(options: GopherQualityOptions = {}, private readonly splitter = new WordSplitter()) {
    this.o = GopherQualityOptions.parse(options);
    this.stop = new Set(this.o.stop_words);
  }

  apply(text: string): FilterVerdict {
    const o = this.o;
    const ids = this.splitter.ids(text);
    const tok = this.splitter.tokenizer;
    const lens = tok.tokenLengths;
    const nWords = ids.length;
    let props = this.props;
    if (this.propsEpoch !== tok.epoch || props.length < tok.vocabSize) props = this.resetProps(tok.epoch, tok.vocabSize);
    let nNonSymbol = 0;
    let nonSymbolChars = 0;
    let alphaWords = 0;
    let stopWords = 0;
    for (let i = 0; i < nWords; i++) {
      const id = ids[i]!;
      let p = props[id]!;
      if (p === 0) p = props[id] = this.wordProps(tok.tokenTexts[id]!);
      if ((p & NON_SYMBOL) !== 0) {
        nNonSymbol++;
        nonSymbolChars += lens[id]!;
      }
      if ((p & ALPHA) !== 0) alphaWords++;
      if ((p & STOP) !== 0) stopWords++;
    }
    if (o.min_doc_words && nNonSymbol < o.min_doc_words) return drop("gopher_short_doc");
    if (o.max_doc_words && nNonSymbol > o.max_doc_words) return drop("gopher_long_doc");
    // numpy's mean of an empty list is nan, which fails every comparison.
    const avg = nNonSymbol === 0 ? Number.NaN : nonSymbolChars / nNonSymbol;
    if (o.min_avg_word_length && avg < o.min_avg_word_length) return drop("gopher_below_avg_threshold");
    if (o.max_avg_word_length && avg > o.max_avg_word_length) return drop("gopher_above_avg_threshold");
    if (o.max_symbol_word_ratio && pyCount(text, "#") / nWords > o.max_symbol_word_ratio) return drop("gopher_too_many_hashes");
    if (o.max_symbol_word_ratio && (pyCount(text, "...") + pyCount(text, "…")) / nWords > o.max_symbol_word_ratio) {
      return drop("gopher_too_many_ellipsis");
    }
    const lines = pySplitlines(text);
    if (o.max_bullet_lines_ratio) {
      let bullets = 0;
      for (const l of lines) {
        const s = pyLstrip(l);
        if (s.startsWith("•") || s.startsWith("-")) bullets++;
      }
      if (bullets / lines.length > o.max_bullet_lines_ratio) return drop("gopher_too_many_bullets");
    }
    if (o.max_ellipsis_lines_ratio) {
      let ell = 0;
      for (const l of lines) {
        const s = pyRstrip(l);
        if (s.endsWith("...") || s.endsWith("…")) ell++;
      }
      if (ell / lines.length > o.max_ellipsis_lines_ratio) return drop("gopher_too_many_end_ellipsis");
    }
    if (o.max_non_alpha_words_ratio && alphaWords / nWords < o.max_non_alpha_words_ratio) return drop("gopher_below_alpha_threshold");
    if (o.min_stop_words && stopWords < o.min_stop_words) return drop("gopher_enough_stop_words");
    return KEEP;
  }

  private wordProps(w: string): number {
    return KNOWN | (isSymbolWord(w) ? 0 : NON_SYMBOL) | (hasAlpha(w) ? ALPHA : 0) | (this.stop.has(w) ? STOP : 0);
  }

  /** A table for the tokenizer's current ids: kept (and grown) within an epoch, emptied across. */
  private resetProps(epoch: number, vocab: number): Uint8Array {
    const grown = new Uint8Array(Math.max(1024, 2 * vocab));
    if (this.propsEpoch === epoch) grown.set(this.props);
    this.propsEpoch = epoch;
    return (this.props = grown);
  }
}

const KNOWN = 1;
const NON_SYMBOL = 2;
const ALPHA = 4;
const STOP = 8;
