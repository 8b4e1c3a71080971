import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const CONTRACTION = String.raw`'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE])`;
const UPPER = String.raw`[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`;
const LOWER = String.raw`[\p{Ll}\p{Lm}\p{Lo}\p{M}]`;

/**
 * tiktoken's split patterns in JavaScript syntax (no possessive quantifiers; `\s+$` stands in for
 * `\s++$`). The same translation as gpt-tokenizer's, which the golden ids of Python tiktoken confirm.
 */
export const TIKTOKEN_SPLIT_PATTERNS = {
  cl100k_base: String.raw`${CONTRACTION}|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s+$|\s*[\r\n]|\s+(?!\S)|\s`,
  o200k_base:
    String.raw`[^\r\n\p{L}\p{N}]?${UPPER}*${LOWER}+(?:${CONTRACTION})?|[^\r\n\p{L}\p{N}]?${UPPER}+${LOWER}*(?:${CONTRACTION})?` +
    String.raw`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
} as const;

/** ASCII character kinds for {@link o200kAsciiEnd}; 0 is "not ASCII". */
const UPPER_K = 1;
const LOWER_K = 2;
const DIGIT_K = 3;
const CRLF_K = 4;
const SPACE_K = 5;
const PUNCT_K = 6;
const ASCII_KIND = new Uint8Array(128).map((_, c) =>
  c >= 65 && c <= 90 ? UPPER_K : c >= 97 && c <= 122 ? LOWER_K : c >= 48 && c <= 57 ? DIGIT_K : c === 10 || c === 13 ? CRLF_K : c === 9 || c === 11 || c === 12 || c === 32 ? SPACE_K : PUNCT_K,
);

function kindAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  return c < 128 ? ASCII_KIND[c]! : 0;
}

/** Length of an o200k contraction suffix (`'s`, `'ll`, `'VE`, …) at `j`, else 0. */
function contraction(text: string, j: number): number {
  if (text.charCodeAt(j) !== 39) return 0;
  const a = text.charCodeAt(j + 1) | 0x20;
  if (a === 115 || a === 100 || a === 109 || a === 116) return 2; // s d m t
  const b = text.charCodeAt(j + 2) | 0x20;
  if ((a === 108 && b === 108) || (a === 118 && b === 101) || (a === 114 && b === 101)) return 3; // ll ve re
  return 0;
}

/**
 * The end of the o200k_base piece that starts at `p`, decided from ASCII characters alone, or -1 when a
 * non-ASCII character could change it (the regex then decides). Follows the pattern's alternatives in order:
 * `[^\r\n\p{L}\p{N}]?` + upper* lower+ or upper+ lower* (+ contraction); `\p{N}{1,3}`;
 * ` ?[^\s\p{L}\p{N}]+[\r\n/]*`; `\s*[\r\n]+`; `\s+(?!\S)`; `\s+`.
 */
export function o200kAsciiEnd(text: string, p: number): number {
  const len = text.length;
  const k = kindAt(text, p);
  if (k === 0) return -1;
  const next = p + 1 < len ? kindAt(text, p + 1) : -1;
  // Letters, with one optional leading character that is not CR/LF, a letter or a digit.
  let q = -1;
  if (k === UPPER_K || k === LOWER_K) q = p;
  else if (k === SPACE_K || k === PUNCT_K) {
    if (next === 0) return -1;
    if (next === UPPER_K || next === LOWER_K) q = p + 1;
  }
  if (q >= 0) {
    let i = q;
    while (i < len && kindAt(text, i) === UPPER_K) i++;
    while (i < len && kindAt(text, i) === LOWER_K) i++;
    if (i < len && kindAt(text, i) === 0) return -1;
    return i + contraction(text, i);
  }
  if (k === DIGIT_K) {
    let i = p + 1;
    while (i < len && i < p + 3 && kindAt(text, i) === DIGIT_K) i++;
    if (i < p + 3 && i < len && kindAt(text, i) === 0) return -1;
    return i;
  }
  // Punctuation, with one optional leading space, then CR/LF and '/'.
  let s = -1;
  if (k === PUNCT_K) s = p;
  else if (text.charCodeAt(p) === 32) {
    if (next === 0) return -1;
    if (next === PUNCT_K) s = p + 1;
  }
  if (s >= 0) {
    let i = s;
    while (i < len && kindAt(text, i) === PUNCT_K) i++;
    if (i < len && kindAt(text, i) === 0) return -1;
    for (let c = text.charCodeAt(i); c === 10 || c === 13 || c === 47; c = text.charCodeAt(++i));
    return i;
  }
  // Whitespace: up to its last CR/LF; else all of it at the end of the text, all but its last character
  // before anything else, or the one character.
  let r = p;
  let lastCrLf = -1;
  for (; r < len; r++) {
    const kr = kindAt(text, r);
    if (kr === CRLF_K) lastCrLf = r;
    else if (kr !== SPACE_K) break;
  }
  if (r < len && kindAt(text, r) === 0) return -1;
  if (lastCrLf >= 0) return lastCrLf + 1;
  if (r === len || r - p === 1) return r;
  return r - 1;
}

const NO_RANK = 0x7fffffff;
const MERGE_CACHE_SIZE = 50_000;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * Byte-pair encoding with tiktoken's ranks and algorithm (`_byte_pair_merge`: repeatedly merge the
 * adjacent pair of lowest rank, leftmost first), kept in typed arrays: token bytes in one pool, an
 * open-addressing table keyed by the FNV-1a hash of a byte range, and each split piece encoded to
 * UTF-8 into a reused buffer. Nothing is allocated per piece but the output ids, which is what makes it
 * faster than the Map-of-strings libraries (bench/pack).
 */
export class TiktokenBpe {
  private readonly pool: Uint8Array;
  /**
   * Open addressing, 4 int32 per slot: hash of the token's bytes, id + 1 (0: empty), byte length, and the
   * bytes themselves packed little-endian when there are at most 4, else their offset in the pool. One
   * slot is one cache line's quarter, so a lookup costs one miss, plus one for long tokens' bytes.
   */
  private readonly table: Int32Array;
  private readonly mask: number;
  /** Rank of every two-byte sequence (`b0 << 8 | b1`), NO_RANK where none: the first merge round without hashing. */
  private readonly pairs = new Int32Array(65536).fill(NO_RANK);
  /** The largest ordinary token id plus one. */
  readonly size: number;
  /** The pattern, sticky: `test` advances `lastIndex` over one piece without allocating a match. */
  private readonly sticky: RegExp;
  /** The pattern, global: finds the next piece should a position match nothing (tiktoken skips it). */
  private readonly regex: RegExp;
  private buf = new Uint8Array(1024);
  private starts = new Int32Array(1025);
  private ranks = new Int32Array(1025);
  /** Merge results of pieces that are not one token, by piece; emptied when full (no LRU bookkeeping per hit). */
  private readonly merges = new Map<string, number[]>();

  /**
   * @param ranks the tiktoken `bpe_ranks` text of the npm `tiktoken` package's encoder JSON
   *   (`"! <offset> <base64> <base64> …"`: ids from the offset upward)
   * @param pattern the split pattern in JavaScript syntax
   * @param asciiEnd the pattern's piece end from ASCII characters alone, or -1 (e.g. {@link o200kAsciiEnd})
   */
  constructor(
    ranks: string,
    pattern: string,
    private readonly asciiEnd?: (text: string, p: number) => number,
  ) {
    this.regex = new RegExp(pattern, "gu");
    this.sticky = new RegExp(pattern, "uy");
    const fields = ranks.split(/[ \n]/);
    const ids: number[] = [];
    const b64: string[] = [];
    for (let i = 0; i < fields.length; ) {
      const off = Number(fields[i + 1]);
      let j = i + 2;
      for (; j < fields.length && fields[j] !== "!" && fields[j] !== ""; j++) {
        ids.push(off + (j - i - 2));
        b64.push(fields[j]!);
      }
      // Skip the empty field a trailing newline leaves.
      while (j < fields.length && fields[j] === "") j++;
      i = j;
    }
    let total = 0;
    for (const t of b64) total += (t.length * 3) >> 2;
    const pool = Buffer.alloc(total);
    let cap = 1;
    while (cap < ids.length * 2) cap <<= 1;
    this.mask = cap - 1;
    const table = new Int32Array(cap * 4);
    let at = 0;
    let maxId = -1;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      const n = pool.write(b64[k]!, at, "base64");
      const h = fnv(pool, at, at + n);
      let slot = (h & this.mask) << 2;
      while (table[slot + 1] !== 0) slot = (slot + 4) & ((this.mask << 2) | 3);
      table[slot] = h;
      table[slot + 1] = id + 1;
      table[slot + 2] = n;
      table[slot + 3] = n <= 4 ? packed(pool, at, n) : at;
      if (n === 2) this.pairs[(pool[at]! << 8) | pool[at + 1]!] = id;
      at += n;
      if (id > maxId) maxId = id;
    }
    this.pool = new Uint8Array(pool.buffer, pool.byteOffset, at);
    this.table = table;
    this.size = maxId + 1;
  }

  /** Loads an encoding from the npm `tiktoken` package's `encoders/<name>.json`. */
  static load(name: keyof typeof TIKTOKEN_SPLIT_PATTERNS): TiktokenBpe {
    const path = createRequire(import.meta.url).resolve(`tiktoken/encoders/${name}.json`);
    const json = JSON.parse(readFileSync(path, "utf8")) as { bpe_ranks: string };
    return new TiktokenBpe(json.bpe_ranks, TIKTOKEN_SPLIT_PATTERNS[name], name === "o200k_base" ? o200kAsciiEnd : undefined);
  }

  /** Ids of `text` with no special-token parsing (tiktoken's `encode_ordinary`). */
  encodeOrdinary(text: string): number[] {
    const out: number[] = [];
    const re = this.sticky;
    const asciiEnd = this.asciiEnd;
    let start = 0;
    while (start < text.length) {
      // Most pieces are ASCII: a hand-written scanner finds their end faster than the regex.
      let stop = asciiEnd ? asciiEnd(text, start) : -1;
      if (stop < 0) {
        re.lastIndex = start;
        if (!re.test(text)) {
          // Both patterns match every character, so this is a safeguard: continue at the next match.
          const g = this.regex;
          g.lastIndex = start;
          const m = g.exec(text);
          if (m === null) break;
          start = m.index;
          continue;
        }
        stop = re.lastIndex;
      }
      // UTF-8 of text[start, stop) into buf, hashing as we go (lone surrogates become U+FFFD, as TextEncoder does).
      if (this.buf.length < (stop - start) * 3) this.grow((stop - start) * 3);
      const buf = this.buf;
      let n = 0;
      let h = FNV_OFFSET;
      for (let i = start; i < stop; i++) {
        let c = text.charCodeAt(i);
        if (c < 0x80) {
          buf[n++] = c;
          h = Math.imul(h ^ c, FNV_PRIME);
          continue;
        }
        if (c >= 0xd800 && c <= 0xdfff) {
          const d = i + 1 < stop ? text.charCodeAt(i + 1) : 0;
          if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            i++;
          } else c = 0xfffd;
        }
        let b: number;
        if (c < 0x800) {
          b = 0xc0 | (c >> 6);
          buf[n++] = b;
          h = Math.imul(h ^ b, FNV_PRIME);
        } else if (c < 0x10000) {
          b = 0xe0 | (c >> 12);
          buf[n++] = b;
          h = Math.imul(h ^ b, FNV_PRIME);
          b = 0x80 | ((c >> 6) & 0x3f);
          buf[n++] = b;
          h = Math.imul(h ^ b, FNV_PRIME);
        } else {
          b = 0xf0 | (c >> 18);
          buf[n++] = b;
          h = Math.imul(h ^ b, FNV_PRIME);
          b = 0x80 | ((c >> 12) & 0x3f);
          buf[n++] = b;
          h = Math.imul(h ^ b, FNV_PRIME);
          b = 0x80 | ((c >> 6) & 0x3f);
          buf[n++] = b;
          h = Math.imul(h ^ b, FNV_PRIME);
        }
        b = 0x80 | (c & 0x3f);
        buf[n++] = b;
        h = Math.imul(h ^ b, FNV_PRIME);
      }
      const piece = start;
      start = stop;
      const id = this.lookup(buf, 0, n, h);
      if (id >= 0) {
        out.push(id);
        continue;
      }
      const key = text.slice(piece, stop);
      let ids = this.merges.get(key);
      if (ids === undefined) {
        ids = this.merge(n);
        if (this.merges.size >= MERGE_CACHE_SIZE) this.merges.clear();
        this.merges.set(key, ids);
      }
      for (let k = 0; k < ids.length; k++) out.push(ids[k]!);
    }
    return out;
  }

  private grow(bytes: number): void {
    let cap = this.buf.length;
    while (cap < bytes) cap *= 2;
    this.buf = new Uint8Array(cap);
    this.starts = new Int32Array(cap + 1);
    this.ranks = new Int32Array(cap + 1);
  }

  /** Token id of `bytes[from, to)` whose FNV-1a hash is `h`, or -1. */
  private lookup(bytes: Uint8Array, from: number, to: number, h: number): number {
    const t = this.table;
    const wrap = (this.mask << 2) | 3;
    const n = to - from;
    let slot = (h & this.mask) << 2;
    for (;;) {
      const v = t[slot + 1]!;
      if (v === 0) return -1;
      if (t[slot] === h && t[slot + 2] === n) {
        const x = t[slot + 3]!;
        if (n <= 4) {
          if (x === packed(bytes, from, n)) return v - 1;
        } else {
          const pool = this.pool;
          let k = 0;
          while (k < n && pool[x + k] === bytes[from + k]) k++;
          if (k === n) return v - 1;
        }
      }
      slot = (slot + 4) & wrap;
    }
  }

  private rankOf(from: number, to: number): number {
    const buf = this.buf;
    let h = FNV_OFFSET;
    for (let i = from; i < to; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
    const id = this.lookup(buf, from, to, h);
    return id < 0 ? NO_RANK : id;
  }

  /** tiktoken's `_byte_pair_merge` over `buf[0, n)`. */
  private merge(n: number): number[] {
    const starts = this.starts;
    const ranks = this.ranks;
    // parts[i] = (starts[i], ranks[i]); ranks[i] is the rank of bytes[starts[i], starts[i + 2]).
    let parts = n + 1;
    const buf = this.buf;
    const pairs = this.pairs;
    for (let i = 0; i <= n; i++) {
      starts[i] = i;
      ranks[i] = i + 2 <= n ? pairs[(buf[i]! << 8) | buf[i + 1]!]! : NO_RANK;
    }
    for (;;) {
      let min = NO_RANK;
      let at = -1;
      for (let i = 0; i < parts - 1; i++) {
        if (ranks[i]! < min) {
          min = ranks[i]!;
          at = i;
        }
      }
      if (at < 0) break;
      // The rank of part j after parts at and at+1 merge: bytes[starts[j], starts[j + 3]) (j + 3 before removal).
      if (at > 0) ranks[at - 1] = at + 2 < parts ? this.rankOf(starts[at - 1]!, starts[at + 2]!) : NO_RANK;
      ranks[at] = at + 3 < parts ? this.rankOf(starts[at]!, starts[at + 3]!) : NO_RANK;
      starts.copyWithin(at + 1, at + 2, parts);
      ranks.copyWithin(at + 1, at + 2, parts);
      parts--;
    }
    // Every single byte is a token, so each part is one.
    const out = new Array<number>(parts - 1);
    for (let i = 0; i < parts - 1; i++) out[i] = this.rankOf(starts[i]!, starts[i + 1]!);
    return out;
  }
}

/** Up to 4 bytes as one int32, little-endian. */
function packed(bytes: Uint8Array, from: number, n: number): number {
  let x = 0;
  for (let i = n - 1; i >= 0; i--) x = (x << 8) | bytes[from + i]!;
  return x;
}

function fnv(bytes: Uint8Array, from: number, to: number): number {
  let h = FNV_OFFSET;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h;
}
