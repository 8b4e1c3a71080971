/**
 * Python `str` semantics the reference metrics depend on (sacrebleu, SQuAD, rouge-score were all
 * written in Python). JavaScript's `\s`, `trim()` and UTF-16 indexing differ from Python's in
 * small ways that change scores, so the metrics use these helpers instead.
 */

/**
 * Characters Python's `str.isspace()` accepts (what `str.split()` with no argument splits on).
 * Unlike JavaScript's `\s` this includes U+001C–U+001F and U+0085 and excludes U+FEFF.
 */
const PY_WHITESPACE =
  "\t\n\u000b\u000c\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
const PY_WS_CLASS = `[${PY_WHITESPACE}]`;
const SPLIT_RE = new RegExp(`${PY_WS_CLASS}+`, "u");
const RSTRIP_RE = new RegExp(`${PY_WS_CLASS}+$`, "u");
const STRIP_RE = new RegExp(`^${PY_WS_CLASS}+|${PY_WS_CLASS}+$`, "gu");

/** Whether one character is whitespace to Python's `str.isspace()`. */
export function isPyWhitespace(ch: string): boolean {
  return ch.length === 1 && PY_WHITESPACE.includes(ch);
}

/**
 * Python's `s.split()` (no separator): split on runs of whitespace, no empty strings.
 *
 * @example
 * pySplit("  a\tb \u0085c ") // → ["a", "b", "c"]
 */
export function pySplit(s: string): string[] {
  const parts = s.split(SPLIT_RE);
  const out: string[] = [];
  for (const p of parts) if (p !== "") out.push(p);
  return out;
}

/** Python's `s.rstrip()`. */
export function pyRstrip(s: string): string {
  return s.replace(RSTRIP_RE, "");
}

/** Python's `s.strip()`. */
export function pyStrip(s: string): string {
  return s.replace(STRIP_RE, "");
}

/** Python's `str.lower()` (Unicode lower-casing, context-sensitive final sigma included). */
export function pyLower(s: string): string {
  return s.toLowerCase();
}

/** A string as Python sees it: a sequence of code points (not UTF-16 units). */
export function codePoints(s: string): string[] {
  return Array.from(s);
}

/**
 * Python's ordering of strings: by code point. JavaScript's `<` compares UTF-16 code units,
 * which disagrees for characters outside the Basic Multilingual Plane.
 */
export function pyCompareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/**
 * Python's `f"{x:.{digits}f}"`: the exact binary value rounded half-to-even. JavaScript's
 * `toFixed` rounds exact ties away from zero (`(0.125).toFixed(2)` is `"0.13"`, Python `"0.12"`).
 *
 * @example
 * pyFormatFixed(0.125, 2) // → "0.12"
 */
export function pyFormatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const s = x.toFixed(digits);
  if (!isExactTie(Math.abs(x), digits)) return s;
  // toFixed picked the larger magnitude; half-to-even wants the even neighbour.
  const lastDigit = Number(s[s.length - 1]);
  if (lastDigit % 2 === 0) return s;
  const down = (Math.abs(x) - 0.5 * 10 ** -digits).toFixed(digits);
  return (x < 0 ? "-" : "") + down;
}

/** Whether `x * 10^digits` is exactly an integer plus one half (x ≥ 0, finite). */
function isExactTie(x: number, digits: number): boolean {
  if (x === 0) return false;
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const bits = buf.getBigUint64(0);
  const expBits = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  let exp: number;
  if (expBits === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = expBits - 1075;
  }
  // x = mant * 2^exp; x * 10^d = mant * 10^d * 2^exp. A tie needs the fraction to be exactly 1/2.
  if (exp >= 0) return false;
  const num = mant * 10n ** BigInt(digits);
  const den = 1n << BigInt(-exp);
  const twice = (num * 2n) % (den * 2n);
  return twice === den;
}
