import { exactExp } from "./exact-math.js";
/**
 * Summation and order statistics with the exact operation order of the reference libraries,
 * so results match to the last bit rather than "approximately".
 */

/** Left-to-right sum, as Python's built-in `sum()`. */
export function seqSum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

function pairwise(a: readonly number[], start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    const r = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < 8; j++) r[j] = a[start + j]!;
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += a[start + i + j]!;
    let res = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwise(a, start, n2) + pairwise(a, start + n2, n - n2);
}

/**
 * `numpy.sum` of a float64 array (numpy's pairwise summation, blocks of 8 and 128).
 *
 * @example
 * numpySum([0.1, 0.2, 0.3]) // → 0.6000000000000001
 */
export function numpySum(xs: readonly number[]): number {
  // Checked against numpy 2.4 on random arrays: the reduction is the pairwise sum of all elements from 0.
  return pairwise(xs, 0, xs.length);
}

/** `numpy.mean` of a float64 array. */
export function numpyMean(xs: readonly number[]): number {
  return numpySum(xs) / xs.length;
}

/**
 * `numpy.quantile(a, q)` with the default `linear` method, numpy's two-sided lerp included.
 *
 * @example
 * quantileLinear([1, 2, 3, 4], [0.25, 0.5]) // → [1.75, 2.5]
 */
export function quantileLinear(a: readonly number[], q: readonly number[]): number[] {
  if (a.length === 0) throw new RangeError("quantile of an empty array");
  const s = Float64Array.from(a).sort();
  const n = s.length;
  return q.map((level) => {
    if (!(level >= 0 && level <= 1)) throw new RangeError(`quantile level ${level} outside [0, 1]`);
    const h = (n - 1) * level;
    const lo = Math.floor(h);
    const t = h - lo;
    const hi = Math.min(lo + 1, n - 1);
    const x = s[lo]!;
    const y = s[hi]!;
    const d = y - x;
    return t < 0.5 ? x + d * t : y - d * (1 - t);
  });
}

/** Perplexity of natural-log token log-probabilities: `exp(mean(-logprob))`, left-to-right mean. */
export function perplexity(tokenLogprobs: readonly number[]): { mean_nll: number; perplexity: number } {
  if (tokenLogprobs.length === 0) throw new RangeError("perplexity of no tokens");
  let s = 0;
  for (const lp of tokenLogprobs) s += -lp;
  const meanNll = s / tokenLogprobs.length;
  return { mean_nll: meanNll, perplexity: exactExp(meanNll) };
}

/**
 * Area under the ROC curve for binary labels, as `sklearn.metrics.roc_auc_score`: the ROC points
 * of `roc_curve(drop_intermediate=True)` integrated with numpy's trapezoid rule (numpy's pairwise
 * sum), so values match bit for bit; tied scores count one half.
 *
 * @example
 * rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) // → 0.75
 */
export function rocAuc(yTrue: readonly (number | boolean)[], yScore: readonly number[]): number {
  if (yTrue.length !== yScore.length) throw new RangeError("y_true and y_score differ in length");
  const n = yScore.length;
  // Descending by score (sklearn: stable mergesort ascending, reversed).
  const order = yScore.map((_, i) => i).sort((a, b) => yScore[a]! - yScore[b]! || a - b).reverse();
  const ys = order.map((i) => (Number(yTrue[i]) === 1 ? 1 : 0));
  const ss = order.map((i) => yScore[i]!);
  let fps: number[] = [];
  let tps: number[] = [];
  let cum = 0;
  for (let i = 0; i < n; i++) {
    cum += ys[i]!;
    if (i === n - 1 || ss[i + 1] !== ss[i]) {
      tps.push(cum);
      fps.push(1 + i - cum);
    }
  }
  if (fps.length > 2) {
    const keepF: number[] = [];
    const keepT: number[] = [];
    for (let i = 0; i < fps.length; i++) {
      const edge = i === 0 || i === fps.length - 1;
      const d2 = (a: number[]) => a[i + 1]! - a[i]! - (a[i]! - a[i - 1]!);
      if (edge || d2(fps) !== 0 || d2(tps) !== 0) {
        keepF.push(fps[i]!);
        keepT.push(tps[i]!);
      }
    }
    fps = keepF;
    tps = keepT;
  }
  fps.unshift(0);
  tps.unshift(0);
  const fLast = fps[fps.length - 1]!;
  const tLast = tps[tps.length - 1]!;
  if (fLast === 0 || tLast === 0) throw new RangeError("ROC AUC needs both classes in y_true");
  const fpr = fps.map((v) => v / fLast);
  const tpr = tps.map((v) => v / tLast);
  const terms: number[] = [];
  for (let i = 0; i + 1 < fpr.length; i++) terms.push(((fpr[i + 1]! - fpr[i]!) * (tpr[i + 1]! + tpr[i]!)) / 2.0);
  return numpySum(terms);
}
