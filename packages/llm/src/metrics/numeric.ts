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
  // A reduction without `initial` starts from the first element and adds the pairwise sum of the rest.
  if (xs.length === 0) return 0;
  return xs[0]! + pairwise(xs, 1, xs.length - 1);
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
  return { mean_nll: meanNll, perplexity: Math.exp(meanNll) };
}

/**
 * Area under the ROC curve for binary labels (ties count one half), as `sklearn.metrics.roc_auc_score`
 * up to the last ulp (sklearn integrates the curve; this counts pairs by mid-ranks).
 *
 * @example
 * rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) // → 0.75
 */
export function rocAuc(yTrue: readonly (number | boolean)[], yScore: readonly number[]): number {
  if (yTrue.length !== yScore.length) throw new RangeError("y_true and y_score differ in length");
  const idx = yScore.map((_, i) => i).sort((a, b) => yScore[a]! - yScore[b]!);
  let nPos = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && yScore[idx[j + 1]!] === yScore[idx[i]!]) j++;
    const midRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (Number(yTrue[idx[k]!]) === 1) {
        nPos++;
        rankSumPos += midRank;
      }
    }
    i = j + 1;
  }
  const nNeg = idx.length - nPos;
  if (nPos === 0 || nNeg === 0) throw new RangeError("ROC AUC needs both classes in y_true");
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}
