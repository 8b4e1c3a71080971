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
    const grams = new NGramIndex(words);
    for (const [n, frac] of o.top_n_grams) {
      if (words.length - n + 1 <= 0) continue;
      if (grams.topDuplicateChars(n) / textLen > frac) return drop(`top_${n}_gram`);
    }
    for (const [n, frac] of o.dup_n_grams) {
      if (grams.allDuplicateChars(n) / textLen > frac) return drop(`duplicated_${n}_n_grams`);
    }
    return KEEP;
  }
}

/**
 * Every n-gram of a word list as a dense integer id, built level by level: the id of an n-gram is
 * the id of the pair (its (n-1)-gram prefix, its last word). Equal ids mean equal n-grams exactly,
 * with no string joins and no hash collisions.
 */
class NGramIndex {
  private readonly levels: Int32Array[] = [];
  private readonly counts: number[] = [];
  /** Per level, occurrences of each id. */
  private readonly occurrences: Int32Array[] = [];
  private readonly lens: Int32Array;

  constructor(words: readonly string[]) {
    const vocab = new Map<string, number>();
    const vocabLen: number[] = [];
    const ids = new Int32Array(words.length);
    const occ = new Int32Array(words.length);
    this.lens = new Int32Array(words.length);
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      let id = vocab.get(w);
      if (id === undefined) {
        vocab.set(w, (id = vocab.size));
        vocabLen.push(pyLen(w));
      }
      ids[i] = id;
      occ[id]!++;
      this.lens[i] = vocabLen[id]!;
    }
    this.levels[1] = ids;
    this.counts[1] = vocab.size;
    this.occurrences[1] = occ;
  }

  /** Ids of the n-grams starting at each position (length: words - n + 1). */
  ids(n: number): Int32Array {
    let have = this.levels.length - 1;
    while (have < n) {
      const prev = this.levels[have]!;
      const prevOcc = this.occurrences[have]!;
      const base = this.levels[1]!;
      const m = prev.length - 1;
      const next = new Int32Array(Math.max(0, m));
      const occ = new Int32Array(Math.max(0, m));
      // An n-gram whose (n-1)-gram prefix occurs once occurs once too: it gets a fresh id with no
      // lookup. Only repeated prefixes go through the table, and in prose those are few.
      let repeated = 0;
      for (let i = 0; i < m; i++) if (prevOcc[prev[i]!]! > 1) repeated++;
      // Open-addressing table of (prefix id, word id) pairs → n-gram id.
      let cap = 16;
      while (cap < 2 * repeated) cap <<= 1;
      const keyA = repeated > 0 ? new Int32Array(cap).fill(-1) : null;
      const keyB = new Int32Array(repeated > 0 ? cap : 0);
      const val = new Int32Array(repeated > 0 ? cap : 0);
      const mask = cap - 1;
      let count = 0;
      for (let i = 0; i < m; i++) {
        const a = prev[i]!;
        if (keyA === null || prevOcc[a]! === 1) {
          occ[count] = 1;
          next[i] = count++;
          continue;
        }
        const b = base[i + have]!;
        let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) & mask;
        for (;;) {
          const ka = keyA[h]!;
          if (ka === -1) {
            keyA[h] = a;
            keyB[h] = b;
            val[h] = count;
            occ[count] = 1;
            next[i] = count++;
            break;
          }
          if (ka === a && keyB[h] === b) {
            const id = val[h]!;
            occ[id]!++;
            next[i] = id;
            break;
          }
          h = (h + 1) & mask;
        }
      }
      have++;
      this.levels[have] = next;
      this.counts[have] = count;
      this.occurrences[have] = occ;
    }
    return this.levels[n]!;
  }

  private chars(i: number, n: number, sep: number): number {
    let c = sep * (n - 1);
    for (let j = 0; j < n; j++) c += this.lens[i + j]!;
    return c;
  }

  /**
   * `find_top_duplicate(get_n_grams(words, n))`: characters of the most frequent " "-joined
   * n-gram times its count; ties go to the n-gram seen first (Counter.most_common is stable).
   */
  topDuplicateChars(n: number): number {
    const ids = this.ids(n);
    if (ids.length === 0) return 0;
    const count = new Int32Array(this.counts[n]!);
    const first = new Int32Array(this.counts[n]!).fill(-1);
    let best = -1;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const c = ++count[id]!;
      if (c === 1) first[id] = i;
      if (best < 0 || c > count[best]! || (c === count[best]! && first[id]! < first[best]!)) best = id;
    }
    return this.chars(first[best]!, n, 1) * count[best]!;
  }

  /**
   * `find_all_duplicate(words, n)`: walk the words; an n-gram ("".join) already seen adds its
   * characters and skips n words, otherwise it is remembered and the walk moves one word.
   * n-grams are compared as word sequences; datatrove compares the joined strings, which differs
   * only when two different splits concatenate to the same characters inside one document.
   */
  allDuplicateChars(n: number): number {
    if (this.levels[1]!.length < n) return 0;
    const ids = this.ids(n);
    const seen = new Uint8Array(this.counts[n]!);
    let repeated = 0;
    let idx = 0;
    while (idx < ids.length) {
      const id = ids[idx]!;
      if (seen[id] === 1) {
        repeated += this.chars(idx, n, 0);
        idx += n;
      } else {
        seen[id] = 1;
        idx++;
      }
    }
    return repeated;
  }
}
