import { isPySpaceCode } from "../text/py-str.js";
import { SPACY_EN } from "./spacy-en-data.js";

/**
 * A faithful TypeScript port of the tokenizer datatrove uses for English: spaCy 3.8's
 * `spacy.blank("en")` rule-based tokenizer (whitespace split, then prefix / suffix / infix rules,
 * URL matching and special-case exceptions, as in `spacy/tokenizer.pyx`) plus its `sentencizer`.
 *
 * The rules themselves are spaCy's, extracted by `gen-spacy-en.py`. Results are cached per
 * whitespace-delimited span, as spaCy does, so repeated words cost one map lookup.
 *
 * @example
 * const tok = SpacyEnglishTokenizer.shared();
 * tok.words("Don't stop (yet)."); // ["Do", "n't", "stop", "(", "yet", ")", "."]
 */
export class SpacyEnglishTokenizer {
  private static instance: SpacyEnglishTokenizer | undefined;

  /** The process-wide instance (the rules are immutable; its cache is shared). */
  static shared(): SpacyEnglishTokenizer {
    return (SpacyEnglishTokenizer.instance ??= new SpacyEnglishTokenizer());
  }

  // Sticky: every prefix alternative is anchored with `^`, so only position 0 is tried.
  private readonly prefixRe = new RegExp(SPACY_EN.prefix, "uy");
  private readonly suffixRe = new RegExp(SPACY_EN.suffix, "gu");
  private readonly infixRe = new RegExp(SPACY_EN.infix, "gu");
  private readonly urlRe = new RegExp(SPACY_EN.url, "uy");
  // Same rules with every character class cut down to its ASCII members: identical on ASCII
  // spans, several times faster in V8 than classes of thousands of Unicode ranges.
  private readonly prefixReA = new RegExp(SPACY_EN.prefixAscii, "y");
  private readonly suffixReA = new RegExp(SPACY_EN.suffixAscii, "g");
  private readonly infixReA = new RegExp(SPACY_EN.infixAscii, "g");
  private readonly urlReA = new RegExp(SPACY_EN.urlAscii, "y");
  private readonly infixTriggerA = new RegExp(SPACY_EN.infixAsciiTrigger);
  private readonly specials: Map<string, readonly string[]>;
  private readonly punctChars: Set<string>;
  private readonly cache: SpanCache;
  private readonly matcher = new Map<string, { tokens: string[]; key: string }[]>();

  constructor(options: { maxCacheEntries?: number } = {}) {
    this.cache = new SpanCache(options.maxCacheEntries ?? 200_000);
    this.specials = new Map(Object.entries(SPACY_EN.rules as Record<string, readonly string[]>));
    this.punctChars = new Set<string>(SPACY_EN.punctChars);
    // Tokenizer.add_special_case: with faster_heuristics, a special case that the affix rules would
    // split goes to a PhraseMatcher over its own affix-only tokenization; matches are re-merged.
    for (const key of this.specials.keys()) {
      if (key.length === 1 && isPySpaceCode(key.charCodeAt(0))) continue;
      if (this.findPrefix(key) === 0 && this.findSuffix(key) === 0 && !hasInfix(ASCII_RE.test(key) ? this.infixReA : this.infixRe, key) && !key.includes(" ")) continue;
      const pattern = this.tokenizeSpan(key, false);
      const first = pattern[0]!;
      let list = this.matcher.get(first);
      if (list === undefined) this.matcher.set(first, (list = []));
      list.push({ tokens: pattern, key });
    }
  }

  /**
   * datatrove's `SpaCyTokenizer.word_tokenize`: spaCy's tokens, each stripped, empty ones
   * (the whitespace tokens) dropped.
   */
  words(text: string): string[] {
    const out: string[] = [];
    const n = text.length;
    let i = 0;
    while (i < n) {
      while (i < n && isPySpaceCode(text.charCodeAt(i))) i++;
      if (i >= n) break;
      const start = i;
      let h = FNV_OFFSET;
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (isPySpaceCode(c)) break;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      const toks = this.spanAt(text, start, i, h);
      for (let k = 0; k < toks.length; k++) out.push(toks[k]!);
    }
    return out;
  }

  /**
   * `len(SpaCyTokenizer.sent_tokenize(text))`: the number of non-blank sentences spaCy's
   * sentencizer finds.
   */
  countSentences(text: string): number {
    const n = text.length;
    if (n === 0) return 0;
    let sentences = 0;
    let curHasWord = false;
    let seenPeriod = false;
    let any = false;
    const visit = (tokText: string | null): void => {
      // null: a whitespace token (never punctuation, never in punct_chars).
      if (!any) {
        any = true;
      } else {
        const inPunct = tokText !== null && this.punctChars.has(tokText);
        if (seenPeriod && !inPunct && (tokText === null || !isPunct(tokText))) {
          if (curHasWord) sentences++;
          curHasWord = false;
          seenPeriod = false;
        } else if (inPunct) {
          seenPeriod = true;
        }
        if (tokText !== null) curHasWord = true;
        return;
      }
      if (tokText !== null) {
        curHasWord = true;
        if (this.punctChars.has(tokText)) seenPeriod = true;
      }
    };
    let i = 0;
    let start = 0;
    let inWs = isPySpaceCode(text.charCodeAt(0));
    let h = FNV_OFFSET;
    // Mirrors Tokenizer._tokenize_affixes: spans alternate between non-space and space runs;
    // a single ' ' after a word is that word's trailing whitespace, not a token.
    for (i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      const ws = isPySpaceCode(c);
      if (ws !== inWs) {
        if (start < i) {
          if (inWs) visit(null);
          else for (const t of this.spanAt(text, start, i, h)) visit(t);
        }
        start = c === 0x20 ? i + 1 : i;
        inWs = !inWs;
        h = FNV_OFFSET;
      }
      if (!ws) h = Math.imul(h ^ c, FNV_PRIME);
    }
    if (start < n) {
      if (inWs) visit(null);
      else for (const t of this.spanAt(text, start, n, h)) visit(t);
    }
    if (curHasWord) sentences++;
    return sentences;
  }

  /** Tokens of one whitespace-free span. */
  span(span: string): readonly string[] {
    let h = FNV_OFFSET;
    for (let i = 0; i < span.length; i++) h = Math.imul(h ^ span.charCodeAt(i), FNV_PRIME);
    return this.spanAt(span, 0, span.length, h);
  }

  /** Tokens of `text[start, end)` (whitespace-free), whose FNV-1a hash over UTF-16 units is `hash`; a cache hit allocates nothing. */
  private spanAt(text: string, start: number, end: number, hash: number): readonly string[] {
    const hit = this.cache.get(text, start, end, hash);
    if (hit !== undefined) return hit;
    const span = text.slice(start, end);
    const toks = this.specials.get(span) ?? this.applySpecialMatches(this.tokenizeSpan(span, true));
    this.cache.set(span, hash, toks);
    return toks;
  }

  private findPrefix(s: string, ascii = ASCII_RE.test(s)): number {
    if (ascii && (s.length === 0 || PREFIX_FIRST_ASCII[s.charCodeAt(0)] === 0)) return 0;
    const re = ascii ? this.prefixReA : this.prefixRe;
    re.lastIndex = 0;
    const m = re.exec(s);
    return m === null ? 0 : m[0].length;
  }

  private findSuffix(s: string, ascii = ASCII_RE.test(s)): number {
    // Every suffix alternative but `\.\.+$` matches at most SUFFIX_WINDOW characters, so the
    // leftmost match lies in the tail; lookbehinds still see the text before lastIndex. A match
    // at the window's start may extend further left (a run of dots): then search everything.
    if (ascii && !asciiSuffixPossible(s)) return 0;
    const re = ascii ? this.suffixReA : this.suffixRe;
    const window = ascii ? SUFFIX_WINDOW_ASCII : SUFFIX_WINDOW;
    const from = s.length > window ? s.length - window : 0;
    re.lastIndex = from;
    let m = re.exec(s);
    if (m !== null && from > 0 && m.index === from) {
      re.lastIndex = 0;
      m = re.exec(s);
    }
    return m === null ? 0 : m[0].length;
  }

  /** Tokenizer._apply_special_cases, within one span (a match across whitespace never has a rule). */
  private applySpecialMatches(toks: string[]): string[] {
    let matches: { start: number; end: number; key: string }[] | undefined;
    for (let i = 0; i < toks.length; i++) {
      const cands = this.matcher.get(toks[i]!);
      if (cands === undefined) continue;
      for (const c of cands) {
        const len = c.tokens.length;
        if (i + len > toks.length) continue;
        let ok = true;
        for (let j = 1; j < len; j++) {
          if (toks[i + j] !== c.tokens[j]) {
            ok = false;
            break;
          }
        }
        if (ok) (matches ??= []).push({ start: i, end: i + len, key: c.key });
      }
    }
    if (matches === undefined) return toks;
    // _filter_special_spans: longest first, then leftmost; a span is kept when neither end token is taken.
    matches.sort((a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start);
    const seen = new Set<number>();
    const kept: { start: number; end: number; key: string }[] = [];
    for (const m of matches) {
      if (!seen.has(m.start) && !seen.has(m.end - 1)) kept.push(m);
      for (let k = m.start; k < m.end; k++) seen.add(k);
    }
    kept.sort((a, b) => a.start - b.start);
    const out: string[] = [];
    let i = 0;
    for (const m of kept) {
      while (i < m.start) out.push(toks[i++]!);
      for (const t of this.specials.get(m.key)!) out.push(t);
      i = m.end;
    }
    while (i < toks.length) out.push(toks[i++]!);
    return out;
  }

  private isUrl(s: string, ascii: boolean): boolean {
    // Every host form in spaCy's URL pattern (IPv4 or domain + TLD) contains a dot.
    if (!s.includes(".")) return false;
    const re = ascii ? this.urlReA : this.urlRe;
    re.lastIndex = 0;
    return re.test(s);
  }

  private tokenizeSpan(span: string, withSpecials: boolean): string[] {
    const prefixes: string[] = [];
    const suffixes: string[] = [];
    let s = span;
    let lastSize = 0;
    // Pieces of an ASCII span are ASCII: decide once which rule variants apply.
    const ascii = ASCII_RE.test(span);
    while (s.length > 0 && s.length !== lastSize) {
      if (withSpecials && this.specials.has(s)) break;
      lastSize = s.length;
      const pre = this.findPrefix(s, ascii);
      let minusPre = "";
      if (pre !== 0) {
        minusPre = s.slice(pre);
        if (withSpecials && minusPre.length > 0 && this.specials.has(minusPre)) {
          prefixes.push(s.slice(0, pre));
          s = minusPre;
          break;
        }
      }
      const suf = this.findSuffix(pre === 0 ? s : s.slice(pre), ascii);
      let minusSuf = "";
      if (suf !== 0) {
        minusSuf = s.slice(0, s.length - suf);
        if (withSpecials && minusSuf.length > 0 && this.specials.has(minusSuf)) {
          suffixes.push(s.slice(s.length - suf));
          s = minusSuf;
          break;
        }
      }
      if (pre !== 0 && suf !== 0 && pre + suf <= s.length) {
        prefixes.push(s.slice(0, pre));
        suffixes.push(s.slice(s.length - suf));
        s = s.slice(pre, s.length - suf);
      } else if (pre !== 0) {
        prefixes.push(s.slice(0, pre));
        s = minusPre;
      } else if (suf !== 0) {
        suffixes.push(s.slice(s.length - suf));
        s = minusSuf;
      }
    }
    const out = prefixes;
    if (s.length > 0) {
      const special = withSpecials ? this.specials.get(s) : undefined;
      if (special !== undefined) {
        for (const t of special) out.push(t);
      } else if (this.isUrl(s, ascii)) {
        out.push(s);
      } else {
        let start = 0;
        let found = false;
        if (!ascii || this.infixTriggerA.test(s)) {
          // String.prototype.matchAll's iteration, without the RegExp clone matchAll makes per call.
          const re = ascii ? this.infixReA : this.infixRe;
          re.lastIndex = 0;
          for (let m = re.exec(s); m !== null; m = re.exec(s)) {
            found = true;
            const a = m.index;
            const b = a + m[0].length;
            if (a === b) re.lastIndex = advanceIndex(s, b, !ascii);
            if (a === 0) continue;
            if (a !== start) out.push(s.slice(start, a));
            if (a !== b) out.push(s.slice(a, b));
            start = b;
          }
        }
        if (!found) out.push(s);
        else if (start < s.length) out.push(s.slice(start));
      }
    }
    for (let k = suffixes.length - 1; k >= 0; k--) out.push(suffixes[k]!);
    return out;
  }
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * Span → tokens, open addressing keyed by a span's characters inside its text: a hit compares
 * characters in place instead of slicing the span out and hashing the new string (most spans of
 * a document are hits). Emptied when full, like spaCy's cache.
 */
class SpanCache {
  private readonly keys: (string | undefined)[];
  private readonly values: (readonly string[] | undefined)[];
  private readonly hashes: Int32Array;
  private readonly mask: number;
  private size = 0;

  constructor(private readonly maxEntries: number) {
    let cap = 16;
    while (cap < 2 * maxEntries) cap <<= 1;
    this.keys = new Array<string | undefined>(cap).fill(undefined);
    this.values = new Array<readonly string[] | undefined>(cap).fill(undefined);
    this.hashes = new Int32Array(cap);
    this.mask = cap - 1;
  }

  get(text: string, start: number, end: number, hash: number): readonly string[] | undefined {
    const len = end - start;
    for (let p = hash & this.mask; ; p = (p + 1) & this.mask) {
      const k = this.keys[p];
      if (k === undefined) return undefined;
      if (this.hashes[p] !== hash || k.length !== len) continue;
      let j = 0;
      while (j < len && k.charCodeAt(j) === text.charCodeAt(start + j)) j++;
      if (j === len) return this.values[p];
    }
  }

  set(key: string, hash: number, value: readonly string[]): void {
    if (this.size >= this.maxEntries) {
      this.keys.fill(undefined);
      this.values.fill(undefined);
      this.size = 0;
    }
    let p = hash & this.mask;
    while (this.keys[p] !== undefined) p = (p + 1) & this.mask;
    this.keys[p] = key;
    this.values[p] = value;
    this.hashes[p] = hash;
    this.size++;
  }
}

function hasInfix(re: RegExp, s: string): boolean {
  for (const _ of s.matchAll(re)) return true;
  return false;
}

const SUFFIX_WINDOW = 24;
/**
 * The same bound for ASCII spans: the longest suffix alternative that can match ASCII text is a
 * 4-character unit (`mbar`, `km/h`) — the others are 1 to 3 characters or contain non-ASCII ones —
 * so 8 leaves a margin; a run of dots is caught by the `m.index === from` re-search as before.
 */
const SUFFIX_WINDOW_ASCII = 8;

// Which ASCII spans the affix rules can touch at all, read off the alternatives of spaCy's English
// prefix and suffix patterns (the ASCII variants; `gen-spacy-en.py` prints them). Every prefix
// alternative is one of % = + , : ; ! ? ( ) [ ] { } < > _ # * & ' " ` $ or `..+`, or `US$` / `C$` /
// `A$`; every other alternative starts with a non-ASCII character. Every suffix alternative ends in
// one of , : ; ! ? ( ) [ ] { } < > _ # * & . ' " ` + $ %, or is `'s` / `'S`, or is a unit (`km`,
// `kg`, `MB`, `T`, …) behind a digit; the rest end in non-ASCII characters. An ASCII span outside
// these shapes skips the regular expressions (their results would be 0: the tokenizer tests and
// the 589-document parity check hold either way).
const PREFIX_FIRST_ASCII = asciiTable("%=+,:;!?()[]{}<>_#*&'\"`$.UCA");
const SUFFIX_LAST_ASCII = asciiTable(",:;!?()[]{}<>_#*&.'\"`+$%");

function asciiTable(chars: string): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

/** False when no suffix rule can match the ASCII string `s` (a true may still find none). */
function asciiSuffixPossible(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  const c = s.charCodeAt(n - 1);
  if (SUFFIX_LAST_ASCII[c] === 1) return true;
  const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  if (!letter) return false;
  if ((c === 0x73 || c === 0x53) && n >= 2 && s.charCodeAt(n - 2) === 0x27) return true;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i);
    if (d >= 0x30 && d <= 0x39) return true;
  }
  return false;
}

/** AdvanceStringIndex: past an empty match, one code unit, or one code point with the `u` flag. */
function advanceIndex(s: string, i: number, unicode: boolean): number {
  if (!unicode || i + 1 >= s.length) return i + 1;
  const c = s.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff) return i + 1;
  const d = s.charCodeAt(i + 1);
  return d >= 0xdc00 && d <= 0xdfff ? i + 2 : i + 1;
}
const ASCII_RE = /^[\x00-\x7f]*$/;

const PUNCT_RE = /^\p{P}+$/u;

/** spaCy's `is_punct` lexical attribute: every character is in a Unicode `P*` category. */
export function isPunct(text: string): boolean {
  return PUNCT_RE.test(text);
}
