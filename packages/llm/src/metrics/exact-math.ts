/**
 * A correctly rounded `exp`. V8's `Math.exp` (an fdlibm port) is off by one ulp for some inputs
 * where glibc — and so Python's `math.exp`, which the reference metrics call — is right; BLEU's
 * geometric mean and perplexity go through exp, so this keeps them bit-identical. Computed in
 * double-double arithmetic (about 100 bits), then rounded once.
 */

// Dekker's split constant 2^27 + 1.
const SPLIT = 134217729;

function twoSum(a: number, b: number): [number, number] {
  const s = a + b;
  const bb = s - a;
  return [s, a - (s - bb) + (b - bb)];
}

function twoProd(a: number, b: number): [number, number] {
  const p = a * b;
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return [p, ah * bh - p + ah * bl + al * bh + al * bl];
}

type DD = [number, number];

function ddAdd(a: DD, b: DD): DD {
  const [s, e] = twoSum(a[0], b[0]);
  const [s2, e2] = twoSum(s, e + a[1] + b[1]);
  return [s2, e2];
}

function ddMul(a: DD, b: DD): DD {
  const [p, e] = twoProd(a[0], b[0]);
  return twoSum(p, e + (a[0] * b[1] + a[1] * b[0]));
}

function ddDivInt(a: DD, k: number): DD {
  const q1 = a[0] / k;
  const [p, pe] = twoProd(q1, k);
  const r = a[0] - p - pe + a[1];
  return twoSum(q1, r / k);
}

// ln 2 as the sum of three doubles (hi + mid + lo), enough for |k| ≤ 1100.
const LN2_HI = 0.6931471805599453;
const LN2_MID = 2.3190468138462996e-17;
const LN2_LO = 5.707708438416212e-34;

/** e^x as a double-double (hi, lo), for |x| ≤ 700 and results in the normal range. */
function ddExp(x: number): DD {
  const k = Math.round(x / LN2_HI);
  // r = x − k·ln2 in double-double.
  const [p1, e1] = twoProd(k, LN2_HI);
  let r: DD = twoSum(x, -p1);
  r = ddAdd(r, [-e1, 0]);
  r = ddAdd(r, twoProd(-k, LN2_MID));
  r = ddAdd(r, [-k * LN2_LO, 0]);
  // Horner: e^r = 1 + r(1 + r/2(1 + r/3(…))); |r| ≤ 0.35 so 27 terms reach 2^-106.
  let t: DD = [1, 0];
  for (let n = 27; n >= 1; n--) t = ddAdd([1, 0], ddDivInt(ddMul(r, t), n));
  // Scale by 2^k in two steps, exact while the result stays normal.
  const h = Math.trunc(k / 2);
  const s1 = 2 ** h;
  const s2 = 2 ** (k - h);
  return [t[0] * s1 * s2, t[1] * s1 * s2];
}

const MIN_NORMAL = 2.2250738585072014e-308;

/**
 * `exp(x)` correctly rounded to the nearest double (for |x| ≤ 700; outside that range, and for
 * non-finite x, `Math.exp`).
 *
 * @example
 * exactExp(4.42794630160607) // → 83.75922397086269 (Math.exp gives 83.7592239708627)
 */
export function exactExp(x: number): number {
  if (!Number.isFinite(x) || Math.abs(x) > 700 || x === 0) return Math.exp(x);
  const [hi, lo] = ddExp(x);
  const y = hi + lo;
  return Number.isFinite(y) && y > MIN_NORMAL ? y : Math.exp(x);
}

/**
 * `log(x)` correctly rounded (one Newton step on {@link exactExp}'s double-double from
 * `Math.log`'s estimate, which V8 gets wrong by an ulp for about 4% of inputs). Non-positive,
 * subnormal and non-finite x fall back to `Math.log`.
 *
 * @example
 * exactLog(83.75922397086269) // → 4.42794630160607
 */
export function exactLog(x: number): number {
  if (!(x >= MIN_NORMAL) || !Number.isFinite(x) || x === 1) return Math.log(x);
  const y0 = Math.log(x);
  if (Math.abs(y0) > 700) return y0;
  const e = ddExp(y0);
  // log x = y0 + log(x / e^y0) ≈ y0 + (x − e^y0) / e^y0, the difference taken in double-double.
  const [d, de] = twoSum(x, -e[0]);
  const corr = (d + (de - e[1])) / e[0];
  return y0 + corr;
}
