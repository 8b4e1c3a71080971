import { z } from "zod";
import { pyLen, pyStrip } from "../text/py-str.js";
import { type DocFilter, drop, type FilterVerdict, KEEP, WordSplitter } from "./doc-filter.js";

/** Options of {@link GopherRepetitionFilter}; `null` disables a rule. Defaults are datatrove's. */
export const GopherRepetitionOptions = z.strictObject({
  /** @default 0.3 */
  dup_line_frac: z.number().nullable().default(0.3),
  /** @default 0.3 */
  dup_para_frac: z.number().nullable().default(0.3),
  /** @default 0.2 */
  dup_line_char_frac: z.number().nullable().default(0.2),
  /** @default 0.2 */
  dup_para_char_frac: z.number().nullable().default(0.2),
  /** `[n, max fraction]` of characters in the most frequent n-gram. @default [[2,0.2],[3,0.18],[4,0.16]] */
  top_n_grams: z
    .array(z.tuple([z.number().int().min(1), z.number()]))
    .default([
      [2, 0.2],
      [3, 0.18],
      [4, 0.16],
    ]),
  /** `[n, max fraction]` of characters in duplicated n-grams. @default [[5,0.15],…,[10,0.1]] */
  dup_n_grams: z
    .array(z.tuple([z.number().int().min(1), z.number()]))
    .default([
      [5, 0.15],
      [6, 0.14],
      [7, 0.13],
      [8, 0.12],
      [9, 0.11],
      [10, 0.1],
    ]),
});
export type GopherRepetitionOptions = z.input<typeof GopherRepetitionOptions>;

/** datatrove's `find_duplicates`: (duplicate elements, characters in duplicates). */
export function findDuplicates(items: readonly string[]): [number, number] {
  const seen = new Set<string>();
  let dupElements = 0;
  let dupChars = 0;
  for (const x of items) {
    if (seen.has(x)) {
      dupElements++;
      dupChars += pyLen(x);
    } else seen.add(x);
  }
  return [dupElements, dupChars];
}

const PARA_RE = /\n{2,}/;
const LINES_RE = /\n+/;

/**
 * datatrove's `GopherRepetitionFilter`: duplicate paragraph / line fractions (by count and by
 * characters), the character share of the most frequent 2-, 3-, 4-gram, and of duplicated 5- to
 * 10-grams. Reasons: `dup_para_frac`, `dup_para_char_frac`, `dup_line_frac`, `dup_line_char_frac`,
 * `top_{n}_gram`, `duplicated_{n}_n_grams`.
 */
export class GopherRepetitionFilter implements DocFilter {
  readonly name = "gopher_repetition";
  private readonly o: z.output<typeof GopherRepetitionOptions>;

  constructor(options: GopherRepetitionOptions = {}, private readonly splitter = new WordSplitter()) {
    this.o = GopherRepetitionOptions.parse(options);
  }

  apply(text: string): FilterVerdict {
    const o = this.o;
    const textLen = pyLen(text);
    const paragraphs = pyStrip(text).split(PARA_RE);
    const [paraDups, paraChars] = findDuplicates(paragraphs);
    if (o.dup_para_frac && paraDups / paragraphs.length > o.dup_para_frac) return drop("dup_para_frac");
    if (o.dup_para_char_frac && paraChars / textLen > o.dup_para_char_frac) return drop("dup_para_char_frac");
    const lines = text.split(LINES_RE);
    const [lineDups, lineChars] = findDuplicates(lines);
    if (o.dup_line_frac && lineDups / lines.length > o.dup_line_frac) return drop("dup_line_frac");
    if (o.dup_line_char_frac && lineChars / textLen > o.dup_line_char_frac) return drop("dup_line_char_frac");

    const words = this.splitter.words(text);
    // Words as small integers and their code-point lengths: n-grams become numeric keys.
    const ids = new Int32Array(words.length);
    const lens = new Int32Array(words.length);
    const vocab = new Map<string, number>();
    const vocabLen: number[] = [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      let id = vocab.get(w);
      if (id === undefined) {
        id = vocab.size;
        vocab.set(w, id);
        vocabLen.push(pyLen(w));
      }
      ids[i] = id;
      lens[i] = vocabLen[id]!;
    }
    for (const [n, frac] of o.top_n_grams) {
      if (words.length - n + 1 <= 0) continue;
      const top = topDuplicateChars(ids, lens, n);
      if (top / textLen > frac) return drop(`top_${n}_gram`);
    }
    for (const [n, frac] of o.dup_n_grams) {
      const dupChars = allDuplicateChars(ids, lens, n);
      if (dupChars / textLen > frac) return drop(`duplicated_${n}_n_grams`);
    }
    return KEEP;
  }
}

function gramKey(ids: Int32Array, i: number, n: number): string {
  let k = "";
  for (let j = 0; j < n; j++) k += ids[i + j]!.toString(36) + ",";
  return k;
}

function gramChars(lens: Int32Array, i: number, n: number, sep: number): number {
  let c = 0;
  for (let j = 0; j < n; j++) c += lens[i + j]!;
  return c + sep * (n - 1);
}

/**
 * `find_top_duplicate(get_n_grams(words, n))`: characters of the most frequent " "-joined n-gram
 * times its count; ties go to the n-gram seen first (Counter.most_common is stable).
 */
function topDuplicateChars(ids: Int32Array, lens: Int32Array, n: number): number {
  const counts = new Map<string, number>();
  let bestKey = "";
  let bestCount = 0;
  let bestFirst = Infinity;
  const first = new Map<string, number>();
  for (let i = 0; i + n <= ids.length; i++) {
    const k = gramKey(ids, i, n);
    const c = (counts.get(k) ?? 0) + 1;
    counts.set(k, c);
    if (c === 1) first.set(k, i);
    const f = first.get(k)!;
    if (c > bestCount || (c === bestCount && f < bestFirst)) {
      bestCount = c;
      bestKey = k;
      bestFirst = f;
    }
  }
  if (bestKey === "") return 0;
  return gramChars(lens, bestFirst, n, 1) * bestCount;
}

/**
 * `find_all_duplicate(words, n)`: walk the words; an n-gram ("".join) already seen adds its
 * characters and skips n words, otherwise it is remembered and the walk moves one word.
 */
function allDuplicateChars(ids: Int32Array, lens: Int32Array, n: number): number {
  const seen = new Set<string>();
  let repeated = 0;
  let idx = 0;
  while (idx < ids.length - n + 1) {
    const k = gramKey(ids, idx, n);
    if (seen.has(k)) {
      repeated += gramChars(lens, idx, n, 0);
      idx += n;
    } else {
      seen.add(k);
      idx++;
    }
  }
  return repeated;
}
