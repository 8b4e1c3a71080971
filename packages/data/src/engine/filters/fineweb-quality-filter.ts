import { z } from "zod";
import { pyCount, pyLen, pyStrip } from "../text/py-str.js";
import { SPACY_EN } from "../tokenizer/spacy-en-data.js";
import { type DocFilter, drop, type FilterVerdict, KEEP, WordSplitter } from "./doc-filter.js";
import { findDuplicates } from "./gopher-repetition-filter.js";

/** Options of {@link FineWebQualityFilter}. Defaults are datatrove's. */
export const FineWebQualityOptions = z.strictObject({
  /** Drop when the share of non-blank lines ending in punctuation is below this. @default 0.12 */
  line_punct_thr: z.number().default(0.12),
  /** Do not apply the punctuation rule when no line ends in punctuation. @default false */
  line_punct_exclude_zero: z.boolean().default(false),
  /** Drop when the share of short lines exceeds this. @default 0.67 */
  short_line_thr: z.number().default(0.67),
  /** A line of at most this many characters is short. @default 30 */
  short_line_length: z.number().int().default(30),
  /** Drop when duplicated lines hold more than this share of characters. @default 0.01 */
  char_duplicates_ratio: z.number().default(0.01),
  /** Drop when newlines per word exceed this. @default 0.3 */
  new_line_ratio: z.number().default(0.3),
  /** Line endings that count as punctuation. @default TERMINAL_PUNCTUATION */
  stop_chars: z.array(z.string().min(1)).optional(),
});
export type FineWebQualityOptions = z.input<typeof FineWebQualityOptions>;

/**
 * datatrove's `TERMINAL_PUNCTUATION`, the default `stop_chars`: the sentence-final marks of spaCy's
 * sentencizer (`.`, `!`, `?` and their equivalents in other scripts); quotes do not count.
 */
export const TERMINAL_PUNCTUATION: readonly string[] = SPACY_EN.punctChars;

/**
 * datatrove's `FineWebQualityFilter` (Penedo et al. 2024), on the non-blank lines of a document:
 * too few lines ending in terminal punctuation (`line_punct_ratio`), too many short lines
 * (`short_line_ratio`), too many characters in duplicated lines (`char_dup_ratio`), too many
 * newlines per word (`list_ratio`); a document without a non-blank line is dropped as `empty`.
 */
export class FineWebQualityFilter implements DocFilter {
  readonly name = "fineweb";
  private readonly o: z.output<typeof FineWebQualityOptions>;
  private readonly stop: readonly string[];
  private readonly stopLast: Set<string> | null;

  constructor(options: FineWebQualityOptions = {}, private readonly splitter = new WordSplitter()) {
    this.o = FineWebQualityOptions.parse(options);
    this.stop = this.o.stop_chars ?? TERMINAL_PUNCTUATION;
    // Single-character stop marks (the default) are checked with one set lookup per line.
    this.stopLast = this.stop.every((c) => [...c].length === 1) ? new Set(this.stop) : null;
  }

  private endsWithStop(l: string): boolean {
    if (this.stopLast === null) return this.stop.some((c) => l.endsWith(c));
    if (l.length === 0) return false;
    const last = l.charCodeAt(l.length - 1);
    const ch = last >= 0xdc00 && last <= 0xdfff && l.length >= 2 ? l.slice(-2) : l[l.length - 1]!;
    return this.stopLast.has(ch);
  }

  apply(text: string): FilterVerdict {
    const o = this.o;
    const lines = text.split("\n").filter((l) => pyStrip(l) !== "");
    if (lines.length === 0) return drop("empty");
    let punct = 0;
    let short = 0;
    for (const l of lines) {
      if (this.endsWithStop(l)) punct++;
      if (l.length <= o.short_line_length || pyLen(l) <= o.short_line_length) short++;
    }
    let ratio = punct / lines.length;
    if (ratio < o.line_punct_thr && !(ratio === 0 && o.line_punct_exclude_zero)) return drop("line_punct_ratio");
    ratio = short / lines.length;
    if (ratio > o.short_line_thr) return drop("short_line_ratio");
    const newlines = pyCount(text, "\n");
    ratio = findDuplicates(lines)[1] / (pyLen(text) - newlines);
    if (ratio > o.char_duplicates_ratio) return drop("char_dup_ratio");
    const words = this.splitter.ids(text);
    if (newlines / words.length > o.new_line_ratio) return drop("list_ratio");
    return KEEP;
  }
}
