import { quantileLinear } from "../metrics/numeric.js";

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same resamples on every machine.
 *
 * @example
 * const rand = seededRandom(0); rand() // → 0.26642920868471265
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A percentile bootstrap confidence interval. */
export interface ConfidenceInterval {
  low: number;
  high: number;
  /** Coverage, e.g. 0.95. */
  level: number;
  /** Resamples drawn. */
  samples: number;
}

/**
 * Percentile bootstrap of a statistic over n units: draws `samples` resamples of n indices with
 * replacement, computes the statistic on each, and returns the (1-level)/2 and (1+level)/2
 * quantiles (numpy's linear method). Corpus metrics (BLEU, chrF, TER) pass a statistic that sums
 * the resampled segments' sufficient statistics, as sacrebleu's own bootstrap does.
 *
 * @example
 * bootstrapCi(values.length, (idx) => mean(idx.map((i) => values[i])), { samples: 1000, seed: 0 })
 */
export function bootstrapCi(
  n: number,
  statistic: (indices: Uint32Array) => number,
  options: { samples: number; seed?: number; level?: number },
): ConfidenceInterval | undefined {
  if (n === 0 || options.samples <= 0) return undefined;
  const level = options.level ?? 0.95;
  const rand = seededRandom(options.seed ?? 0);
  const values: number[] = [];
  const idx = new Uint32Array(n);
  for (let b = 0; b < options.samples; b++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rand() * n);
    values.push(statistic(idx));
  }
  const [low, high] = quantileLinear(values, [(1 - level) / 2, (1 + level) / 2]);
  return { low: low!, high: high!, level, samples: options.samples };
}

/** Mean of `values` at the given indices. */
export function meanAt(values: readonly number[], idx: Uint32Array): number {
  let s = 0;
  for (const i of idx) s += values[i]!;
  return s / idx.length;
}
