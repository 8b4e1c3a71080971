import { describe, expect, it } from "vitest";
import { NGramIndex } from "../../src/engine/filters/gopher-repetition-filter.js";

// Plain transcriptions of datatrove's find_top_duplicate(get_n_grams(words, n)) and
// find_all_duplicate(words, n), n-grams compared as word sequences.
function topRef(words: string[], n: number): number {
  const counts = new Map<string, { count: number; first: number }>();
  for (let i = 0; i + n <= words.length; i++) {
    const key = words.slice(i, i + n).join("\u0000");
    const c = counts.get(key);
    if (c) c.count++;
    else counts.set(key, { count: 1, first: i });
  }
  let best: { count: number; first: number } | null = null;
  for (const c of counts.values()) if (best === null || c.count > best.count) best = c;
  if (best === null) return 0;
  return words.slice(best.first, best.first + n).join(" ").length * best.count;
}

function allRef(words: string[], n: number): number {
  const seen = new Set<string>();
  let repeated = 0;
  let idx = 0;
  while (idx < words.length - n + 1) {
    const gram = words.slice(idx, idx + n);
    const key = gram.join("\u0000");
    if (seen.has(key)) {
      repeated += gram.join("").length;
      idx += n;
    } else {
      seen.add(key);
      idx++;
    }
  }
  return repeated;
}

describe("NGramIndex (Gopher repetition n-grams over live positions)", () => {
  it("equals the plain definitions on random word lists, n = 1 to 10, ties included", () => {
    let seed = 7;
    const rnd = (k: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % k);
    const vocab = ["a", "bb", "ccc", "the", "of", "x", "yy", "zzzz"];
    for (let trial = 0; trial < 300; trial++) {
      const len = rnd(60);
      const v = 1 + rnd(vocab.length);
      const words = Array.from({ length: len }, () => vocab[rnd(v)]!);
      // Sometimes a repeated block, so long n-grams repeat too.
      if (trial % 3 === 0 && len > 12) words.push(...words.slice(2, 2 + rnd(12)));
      const index = NGramIndex.ofWords(words);
      // Any call order must give the same answers (levels are built lazily).
      const ns = trial % 2 === 0 ? [2, 3, 4, 5, 6, 7, 8, 9, 10, 1] : [10, 1, 5, 2, 9, 3, 8, 4, 7, 6];
      for (const n of ns) {
        expect(index.topDuplicateChars(n), `top n=${n} ${words.join(" ")}`).toBe(topRef(words, n));
        expect(index.allDuplicateChars(n), `all n=${n} ${words.join(" ")}`).toBe(allRef(words, n));
      }
    }
  });
});
