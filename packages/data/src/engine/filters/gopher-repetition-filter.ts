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
  /** The n-gram index's arrays, reused from one document to the next. */
  private readonly arena = new Int32Arena();

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

    const ids = this.splitter.ids(text);
    const tok = this.splitter.tokenizer;
    this.arena.reset();
    const grams = new NGramIndex(ids, tok.tokenLengths, tok.vocabSize, this.arena);
    for (const [n, frac] of o.top_n_grams) {
      if (ids.length - n + 1 <= 0) continue;
      if (grams.topDuplicateChars(n) / textLen > frac) return drop(`top_${n}_gram`);
    }
    for (const [n, frac] of o.dup_n_grams) {
      if (grams.allDuplicateChars(n) / textLen > frac) return drop(`duplicated_${n}_n_grams`);
    }
    return KEEP;
  }
}

/**
 * The repeated n-grams of a word list, level by level. Level 1 gives every word a dense id; level
 * n keeps only the positions whose n-gram occurs at least twice ("live" positions, ascending), each
 * with an id for its n-gram: the id of the pair (its (n-1)-gram's id, its last word). An n-gram
 * whose (n-1)-gram prefix occurs once occurs once too, so level n is built from level n-1's live
 * positions only — in prose a few per cent of the words by n = 5. Equal ids mean equal n-grams
 * exactly, with no string joins and no hash collisions.
 */
export class NGramIndex {
  /** Word id per position. */
  private readonly wordIds: Int32Array;
  private readonly lens: Int32Array;
  /** Per level n: live positions (ascending), their n-gram ids, and occurrences per id. */
  private readonly livePos: Int32Array[] = [];
  private readonly liveId: Int32Array[] = [];
  private readonly liveCount: Int32Array[] = [];

  private readonly arena: Int32Arena | null;

  /**
   * `words[i]` is a word's id (below `vocabSize`), `wordLen[id]` its length in code points: equal
   * ids are equal words. With an `arena`, every array of the index is a view into it, valid until
   * the arena's next `reset()`; without, each is allocated.
   */
  constructor(words: ArrayLike<number>, wordLen: ArrayLike<number>, vocabSize: number, arena: Int32Arena | null = null) {
    this.arena = arena;
    // Dense per-document ids, first seen first, through a per-thread table over the vocabulary.
    const r = remapTable(vocabSize);
    const stamp = r.stamp;
    const local = r.local;
    const gen = r.gen;
    const ids = this.alloc(words.length);
    const occ = this.alloc(words.length).fill(0);
    this.lens = this.alloc(words.length);
    let next = 0;
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      let id: number;
      if (stamp[w] === gen) id = local[w]!;
      else {
        stamp[w] = gen;
        local[w] = id = next++;
      }
      ids[i] = id;
      occ[id]!++;
      this.lens[i] = wordLen[w]!;
    }
    this.wordIds = ids;
    let live = 0;
    for (let i = 0; i < ids.length; i++) if (occ[ids[i]!]! > 1) live++;
    const pos = this.alloc(live);
    const lid = this.alloc(live);
    for (let i = 0, k = 0; i < ids.length; i++) {
      if (occ[ids[i]!]! > 1) {
        pos[k] = i;
        lid[k++] = ids[i]!;
      }
    }
    this.livePos[1] = pos;
    this.liveId[1] = lid;
    this.liveCount[1] = occ;
  }

  /** An index over word strings (ids given here, first seen first). */
  static ofWords(words: readonly string[]): NGramIndex {
    const vocab = new Map<string, number>();
    const lens: number[] = [];
    const ids = words.map((w) => {
      let id = vocab.get(w);
      if (id === undefined) {
        vocab.set(w, (id = vocab.size));
        lens.push(pyLen(w));
      }
      return id;
    });
    return new NGramIndex(ids, lens, vocab.size);
  }

  /** Build levels up to n. */
  private build(n: number): void {
    const base = this.wordIds;
    for (let have = this.livePos.length - 1; have < n; have++) {
      const prevPos = this.livePos[have]!;
      const prevId = this.liveId[have]!;
      // Candidates: live positions of level `have` that have a next word.
      let m = prevPos.length;
      while (m > 0 && prevPos[m - 1]! + have >= base.length) m--;
      let cap = 16;
      while (cap < 2 * m) cap <<= 1;
      const t = scratch(cap, m);
      const keyA = t.keyA;
      const keyB = t.keyB;
      const val = t.val;
      const candId = t.candId;
      const count = t.count;
      keyA.fill(-1, 0, cap);
      const mask = cap - 1;
      let ids = 0;
      for (let k = 0; k < m; k++) {
        const a = prevId[k]!;
        const b = base[prevPos[k]! + have]!;
        let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) & mask;
        for (;;) {
          const ka = keyA[h]!;
          if (ka === -1) {
            keyA[h] = a;
            keyB[h] = b;
            val[h] = ids;
            candId[k] = ids;
            count[ids++] = 1;
            break;
          }
          if (ka === a && keyB[h] === b) {
            const id = val[h]!;
            count[id]!++;
            candId[k] = id;
            break;
          }
          h = (h + 1) & mask;
        }
      }
      let live = 0;
      for (let k = 0; k < m; k++) if (count[candId[k]!]! > 1) live++;
      // Only what later calls read is kept: live positions, their ids, and the count of each id
      // (ids need not be dense: they index the counts and the next level's hash keys only).
      const pos = this.alloc(live);
      const lid = this.alloc(live);
      for (let k = 0, j = 0; k < m; k++) {
        const id = candId[k]!;
        if (count[id]! > 1) {
          pos[j] = prevPos[k]!;
          lid[j++] = id;
        }
      }
      this.livePos[have + 1] = pos;
      this.liveId[have + 1] = lid;
      const counts = this.alloc(ids);
      counts.set(count.subarray(0, ids));
      this.liveCount[have + 1] = counts;
    }
  }

  /** `n` ints from the arena (not zeroed), or a new array. */
  private alloc(n: number): Int32Array {
    return this.arena === null ? new Int32Array(n) : this.arena.take(n);
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
    if (this.wordIds.length < n) return 0;
    this.build(n);
    const pos = this.livePos[n]!;
    // No n-gram occurs twice: every count is 1 and the first n-gram wins the tie.
    if (pos.length === 0) return this.chars(0, n, 1);
    const ids = this.liveId[n]!;
    const count = this.liveCount[n]!;
    // Live positions ascend, so the first live position of the best id is its first occurrence.
    let bestPos = pos[0]!;
    let bestCount = count[ids[0]!]!;
    for (let k = 1; k < pos.length; k++) {
      const c = count[ids[k]!]!;
      if (c > bestCount) {
        bestCount = c;
        bestPos = pos[k]!;
      }
    }
    return this.chars(bestPos, n, 1) * bestCount;
  }

  /**
   * `find_all_duplicate(words, n)`: walk the words; an n-gram ("".join) already seen adds its
   * characters and skips n words, otherwise it is remembered and the walk moves one word.
   * n-grams are compared as word sequences; datatrove compares the joined strings, which differs
   * only when two different splits concatenate to the same characters inside one document.
   * Only live positions can be seen twice, so the walk jumps from one live position to the next.
   */
  allDuplicateChars(n: number): number {
    if (this.wordIds.length < n) return 0;
    this.build(n);
    const pos = this.livePos[n]!;
    if (pos.length === 0) return 0;
    const ids = this.liveId[n]!;
    const seen = this.alloc(this.liveCount[n]!.length).fill(0);
    let repeated = 0;
    let idx = 0;
    for (let k = 0; k < pos.length; k++) {
      const p = pos[k]!;
      if (p < idx) continue;
      const id = ids[k]!;
      if (seen[id] === 1) {
        repeated += this.chars(p, n, 0);
        idx = p + n;
      } else {
        seen[id] = 1;
        idx = p + 1;
      }
    }
    return repeated;
  }
}

/**
 * Int32 views carved from one grow-only buffer and handed out again after {@link reset}: an index
 * built per document allocates nothing once the buffer fits the largest document. Each fresh
 * typed array costs an allocation outside V8's heap, and with two threads the memory the allocator
 * hands back and maps again costs each thread page faults and the other core TLB shootdowns: at 2
 * threads the system time was twice that at 1.
 */
export class Int32Arena {
  private buf = new Int32Array(1 << 14);
  private top = 0;

  /** Every view handed out so far may be handed out again. */
  reset(): void {
    this.top = 0;
  }

  /** A view of `n` ints, not zeroed; valid until the next {@link reset}. */
  take(n: number): Int32Array {
    if (this.top + n > this.buf.length) {
      // Views already taken keep the old buffer; the rest comes from a larger one.
      this.buf = new Int32Array(Math.max(2 * this.buf.length, 2 * n));
      this.top = 0;
    }
    const v = this.buf.subarray(this.top, this.top + n);
    this.top += n;
    return v;
  }
}

/** Hash-table and per-candidate buffers shared by every index on this thread (grown, never shrunk). */
let scratchBufs: { keyA: Int32Array; keyB: Int32Array; val: Int32Array; candId: Int32Array; count: Int32Array } | null = null;

function scratch(cap: number, m: number): NonNullable<typeof scratchBufs> {
  const b = scratchBufs;
  if (b !== null && b.keyA.length >= cap && b.candId.length >= m) return b;
  const c = Math.max(cap, b?.keyA.length ?? 0);
  const n = Math.max(m, b?.candId.length ?? 0, 16);
  return (scratchBufs = { keyA: new Int32Array(c), keyB: new Int32Array(c), val: new Int32Array(c), candId: new Int32Array(n), count: new Int32Array(n) });
}

/** Word id → per-document id, valid where `stamp` equals `gen` (a new `gen` per document empties it). */
let remap: { stamp: Int32Array; local: Int32Array; gen: number } | null = null;

function remapTable(vocabSize: number): NonNullable<typeof remap> {
  let r = remap;
  if (r === null || r.stamp.length < vocabSize || r.gen === 0x7fffffff) {
    const n = Math.max(1024, 2 * vocabSize, r?.stamp.length ?? 0);
    r = remap = { stamp: new Int32Array(n), local: new Int32Array(n), gen: 0 };
  }
  r.gen++;
  return r;
}
