/**
 * Python `str` semantics that datatrove's filters depend on, in JavaScript: code-point lengths,
 * `isspace`, `isalpha`, `strip`, `split()`, `splitlines()`. JavaScript's own `\s`, `trim` and
 * `length` differ (U+FEFF is whitespace to JavaScript but not to Python; astral characters count
 * twice), and those differences change filter verdicts.
 */

/** Python's `str.isspace()` characters, as a regular-expression class body. */
export const PY_WS_CLASS = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

const WS_SET = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
  0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** Python's `ch.isspace()` for one UTF-16 code unit (no whitespace lies outside the BMP). */
export function isPySpaceCode(code: number): boolean {
  // Printable ASCII, the common case, in two comparisons.
  if (code > 0x20) return code >= 0x85 && (code === 0x85 || code === 0xa0 || (code >= 0x1680 && WS_SET.has(code)));
  return code >= 0x1c || (code >= 0x09 && code <= 0x0d);
}

const SURROGATE_RE = /[\ud800-\udbff]/;

/** Length in code points, as Python's `len(str)`. */
export function pyLen(s: string): number {
  if (!SURROGATE_RE.test(s)) return s.length;
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** Python's `str.strip()` (no argument). */
export function pyStrip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isPySpaceCode(s.charCodeAt(a))) a++;
  while (b > a && isPySpaceCode(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Python's `str.lstrip()`. */
export function pyLstrip(s: string): string {
  let a = 0;
  while (a < s.length && isPySpaceCode(s.charCodeAt(a))) a++;
  return a === 0 ? s : s.slice(a);
}

/** Python's `str.rstrip()`. */
export function pyRstrip(s: string): string {
  let b = s.length;
  while (b > 0 && isPySpaceCode(s.charCodeAt(b - 1))) b--;
  return b === s.length ? s : s.slice(0, b);
}

/** Python's `str.split()` with no separator: runs of whitespace, no empty strings. */
export function pySplit(s: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i < s.length; i++) {
    if (isPySpaceCode(s.charCodeAt(i))) {
      if (start >= 0) {
        out.push(s.slice(start, i));
        start = -1;
      }
    } else if (start < 0) start = i;
  }
  if (start >= 0) out.push(s.slice(start));
  return out;
}

/** Number of items `str.split()` would return, without building them. */
export function pySplitCount(s: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const ws = isPySpaceCode(s.charCodeAt(i));
    if (!ws && !inWord) n++;
    inWord = !ws;
  }
  return n;
}

function isLineBreak(c: number): boolean {
  return (c >= 0x0a && c <= 0x0d) || c === 0x1c || c === 0x1d || c === 0x1e || c === 0x85 || c === 0x2028 || c === 0x2029;
}

/** The line breaks of `str.splitlines()` other than `\n`. */
const RARE_LINE_BREAK = /[\v\f\r\x1c-\x1e\x85\u2028\u2029]/;

/** Python's `str.splitlines()` (no `keepends`): `\r\n` counts once, no trailing empty line. */
export function pySplitlines(s: string): string[] {
  // Text whose only line break is \n (nearly all of it) takes the engine's native split.
  if (!RARE_LINE_BREAK.test(s)) {
    if (s.length === 0) return [];
    const lines = s.split("\n");
    if (s.charCodeAt(s.length - 1) === 0x0a) lines.pop();
    return lines;
  }
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (isLineBreak(c)) {
      out.push(s.slice(start, i));
      i += c === 0x0d && s.charCodeAt(i + 1) === 0x0a ? 2 : 1;
      start = i;
    } else i++;
  }
  if (start < s.length) out.push(s.slice(start));
  return out;
}

const ALPHA_RE = /\p{L}/u;

/** Python's `any(c.isalpha() for c in w)`. */
export function hasAlpha(w: string): boolean {
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i);
    if (c < 0x80) {
      if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
      continue;
    }
    return ALPHA_RE.test(w.slice(i));
  }
  return false;
}

/** Count of non-overlapping occurrences of `needle`, as Python's `str.count`. */
export function pyCount(s: string, needle: string): number {
  let n = 0;
  let i = s.indexOf(needle);
  while (i >= 0) {
    n++;
    i = s.indexOf(needle, i + needle.length);
  }
  return n;
}
