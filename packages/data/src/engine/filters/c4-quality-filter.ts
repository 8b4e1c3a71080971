import { z } from "zod";
import { isPySpaceCode, pyLen, pySplitlines, pyStrip } from "../text/py-str.js";
import { type DocFilter, drop, type FilterVerdict, KEEP, WordSplitter } from "./doc-filter.js";

/** Options of {@link C4QualityFilter}. Defaults are datatrove's (C4's); see {@link C4_FINEWEB_PRESET}. */
export const C4QualityOptions = z.strictObject({
  /** Split on lines (C4); `false` applies the line rules to sentences instead. @default true */
  split_paragraph: z.boolean().default(true),
  /** Remove Wikipedia-style citations `[1]`, `[edit]`, `[citation needed]`. @default true */
  remove_citations: z.boolean().default(true),
  /** Drop lines that do not end in `. ? ! " '` (or end in `...`). @default true */
  filter_no_terminal_punct: z.boolean().default(true),
  /** Drop documents with fewer sentences after line filtering; -1 disables. @default 5 */
  min_num_sentences: z.number().int().default(5),
  /** Drop lines with fewer words; -1 disables. @default 3 */
  min_words_per_line: z.number().int().default(3),
  /** Drop lines with a longer word; -1 disables. @default 1000 */
  max_word_length: z.number().int().default(1000),
  /** @default true */
  filter_lorem_ipsum: z.boolean().default(true),
  /** @default true */
  filter_javascript: z.boolean().default(true),
  /** @default true */
  filter_curly_bracket: z.boolean().default(true),
  /** @default true */
  filter_policy: z.boolean().default(true),
});
export type C4QualityOptions = z.input<typeof C4QualityOptions>;

/** FineWeb's C4 settings (`examples/fineweb.py`): `filter_no_terminal_punct=False`. */
export const C4_FINEWEB_PRESET: C4QualityOptions = { filter_no_terminal_punct: false };

const CITATION_RE = /\[\p{Nd}*\]|\[edit\]|\[citation needed\]/gu;
const END_PUNCT = [".", "?", "!", '"', "'"];
const POLICY = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"];

/**
 * `len(line.split())` and whether a word of it is longer than `max` code points, without building
 * the words.
 */
function wordStats(line: string, max: number): { count: number; tooLong: boolean } {
  let count = 0;
  let tooLong = false;
  let start = -1;
  for (let i = 0; i <= line.length; i++) {
    if (i === line.length || isPySpaceCode(line.charCodeAt(i))) {
      if (start >= 0) {
        // UTF-16 length bounds the code point count from above: only a long run needs pyLen.
        if (!tooLong && max >= 0 && i - start > max && pyLen(line.slice(start, i)) > max) tooLong = true;
        start = -1;
      }
    } else if (start < 0) {
      start = i;
      count++;
    }
  }
  return { count, tooLong };
}

/**
 * datatrove's `C4QualityFilter` (Raffel et al. 2020): line-level edits (too-long words,
 * citations, terminal punctuation, short lines, `javascript`, policy lines) and document drops
 * (`lorem_ipsum`, `curly_bracket`, `too_few_sentences`). A kept document's text is the kept lines
 * joined with `\n`.
 */
export class C4QualityFilter implements DocFilter {
  readonly name: string;
  private readonly o: z.output<typeof C4QualityOptions>;

  constructor(options: C4QualityOptions = {}, private readonly splitter = new WordSplitter(), name = "c4") {
    this.o = C4QualityOptions.parse(options);
    this.name = name;
  }

  apply(text: string): FilterVerdict {
    const o = this.o;
    if (!o.split_paragraph) throw new Error("c4: split_paragraph=false (sentence mode) is not supported; set split_paragraph: true");
    const lines = pySplitlines(text);
    let numSentences = 0;
    const kept: string[] = [];
    for (const raw of lines) {
      let line = pyStrip(raw);
      const words = wordStats(line, o.max_word_length);
      if (o.max_word_length !== -1 && words.tooLong) continue;
      if (o.remove_citations && line.includes("[")) line = line.replace(CITATION_RE, "");
      if (o.filter_no_terminal_punct && (!END_PUNCT.some((p) => line.endsWith(p)) || line.endsWith("..."))) continue;
      if (words.count < o.min_words_per_line) continue;
      const lower = line.toLowerCase();
      if (o.filter_lorem_ipsum && lower.includes("lorem ipsum")) return drop("lorem_ipsum");
      if (o.filter_javascript && lower.includes("javascript")) continue;
      if (o.filter_curly_bracket && line.includes("{")) return drop("curly_bracket");
      if (o.filter_policy && POLICY.some((p) => lower.includes(p))) continue;
      numSentences += this.splitter.countSentences(line);
      kept.push(line);
    }
    if (numSentences < o.min_num_sentences) return drop("too_few_sentences");
    const out = pyStrip(kept.join("\n"));
    return out === text ? KEEP : { keep: true, text: out };
  }
}
