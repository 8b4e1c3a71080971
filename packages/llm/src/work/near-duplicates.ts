import { pySplit } from "../metrics/python-text.js";

/** Word k-gram shingles of a text (whitespace tokens, case and punctuation kept; duplicates collapse). */
export function shingles(text: string, k = 5): Set<string> {
  const tokens = pySplit(text);
  const out = new Set<string>();
  // Tokens hold no whitespace, so a space-joined key is unambiguous.
  for (let i = 0; i + k <= tokens.length; i++) out.add(tokens.slice(i, i + k).join(" "));
  return out;
}

/** Exact Jaccard similarity |A∩B| / |A∪B| of two sets (0 for two empty sets). */
export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let inter = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const x of small) if (large.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

/**
 * Keeps the first of each group of near-duplicate texts: a text is dropped when the exact Jaccard
 * similarity of its word 5-gram shingles with an already kept text reaches `threshold`. Candidates
 * come from an inverted index of shingles, so only texts sharing a shingle are compared. Texts too
 * short to have a shingle are compared by exact (whitespace-normalised) equality.
 *
 * @example
 * const idx = new NearDuplicateIndex(0.8);
 * idx.add("the quick brown fox jumps over the lazy dog") // → true (kept)
 */
export class NearDuplicateIndex {
  readonly threshold: number;
  readonly k: number;
  private readonly kept: Set<string>[] = [];
  private readonly byShingle = new Map<string, number[]>();
  private readonly short = new Set<string>();

  constructor(threshold = 0.8, k = 5) {
    this.threshold = threshold;
    this.k = k;
  }

  /** Adds a text if it is not a near-duplicate of one kept before; returns whether it was kept. */
  add(text: string): boolean {
    const sh = shingles(text, this.k);
    if (sh.size === 0) {
      const norm = pySplit(text).join(" ");
      if (this.short.has(norm)) return false;
      this.short.add(norm);
      return true;
    }
    const seen = new Set<number>();
    for (const s of sh) {
      for (const id of this.byShingle.get(s) ?? []) {
        if (seen.has(id)) continue;
        seen.add(id);
        if (jaccard(sh, this.kept[id]!) >= this.threshold) return false;
      }
    }
    const id = this.kept.length;
    this.kept.push(sh);
    for (const s of sh) {
      const list = this.byShingle.get(s);
      if (list) list.push(id);
      else this.byShingle.set(s, [id]);
    }
    return true;
  }
}
