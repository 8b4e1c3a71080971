import { isPySpaceCode, pyLen } from "../text/py-str.js";
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
  private readonly cache: SpanTable;
  private readonly maxCacheEntries: number;
  private readonly maxVocabEntries: number;
  private readonly matcher = new Map<string, { tokens: string[]; key: string }[]>();
  // Token table: every token text the span cache holds gets a dense id, with its code-point length
  // and sentencizer flags. Emptied together with the span cache, between calls (see `epoch`).
  private readonly vocab = new Map<string, number>();
  private texts: string[] = [];
  private lens = new Int32Array(1024);
  private flags = new Uint8Array(1024);
  private epochNo = 0;
  private idBuf = new Int32Array(1024);

  /**
   * `maxCacheEntries`: spans cached before the span cache is emptied (spaCy's cache is bounded too);
   * `maxVocabEntries`: token texts held before the token table is emptied (spaCy's string store is
   * not bounded; this bounds memory on corpora of unbounded vocabulary).
   */
  constructor(options: { maxCacheEntries?: number; maxVocabEntries?: number } = {}) {
    this.maxCacheEntries = options.maxCacheEntries ?? 200_000;
    this.maxVocabEntries = options.maxVocabEntries ?? 500_000;
    this.cache = new SpanTable();
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
   * Changes whenever the token table is emptied (at the start of a call, once the span cache is
   * full): ids from {@link wordIds} are meaningful only with the tables of the same epoch.
   */
  get epoch(): number {
    return this.epochNo;
  }

  /** Code-point length (Python's `len`) of each token id's text. */
  get tokenLengths(): Int32Array {
    return this.lens;
  }

  /** Text of each token id. */
  get tokenTexts(): readonly string[] {
    return this.texts;
  }

  /** Number of token ids handed out in this epoch. */
  get vocabSize(): number {
    return this.texts.length;
  }

  /**
   * datatrove's `SpaCyTokenizer.word_tokenize`: spaCy's tokens, each stripped, empty ones
   * (the whitespace tokens) dropped.
   */
  words(text: string): string[] {
    const ids = this.wordIds(text);
    const texts = this.texts;
    const out = new Array<string>(ids.length);
    for (let k = 0; k < ids.length; k++) out[k] = texts[ids[k]!]!;
    return out;
  }

  /**
   * {@link words} as token ids: equal ids mean equal token texts (within one {@link epoch});
   * {@link tokenTexts} and {@link tokenLengths} give each id's text and length.
   */
  wordIds(text: string): Int32Array {
    this.startCall();
    const cache = this.cache;
    let out = this.idBuf;
    let m = 0;
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
      let s = cache.find(text, start, i, h);
      if (s < 0) s = this.miss(text, start, i, h);
      const slots = cache.slots;
      const cnt = slots[s + 2]!;
      if (m + cnt > out.length) {
        const grown = new Int32Array(Math.max(2 * out.length, m + cnt));
        grown.set(out.subarray(0, m));
        out = this.idBuf = grown;
      }
      if (cnt === 1) out[m++] = slots[s + 3]!;
      else {
        const vals = cache.vals;
        for (let k = slots[s + 3]!, e = k + cnt; k < e; k++) out[m++] = vals[k]!;
      }
    }
    return out.slice(0, m);
  }

  /**
   * `len(SpaCyTokenizer.sent_tokenize(text))`: the number of non-blank sentences spaCy's
   * sentencizer finds.
   */
  countSentences(text: string): number {
    const n = text.length;
    if (n === 0) return 0;
    this.startCall();
    const cache = this.cache;
    let sentences = 0;
    let curHasWord = false;
    let seenPeriod = false;
    let any = false;
    // A token's flags: TOKEN, plus IN_PUNCT_CHARS and IS_PUNCT; 0 is a whitespace token (never
    // punctuation, never in punct_chars).
    const visit = (f: number): void => {
      if (!any) {
        any = true;
      } else {
        const inPunct = (f & IN_PUNCT_CHARS) !== 0;
        if (seenPeriod && !inPunct && (f & IS_PUNCT) === 0) {
          if (curHasWord) sentences++;
          curHasWord = false;
          seenPeriod = false;
        } else if (inPunct) {
          seenPeriod = true;
        }
        if (f !== 0) curHasWord = true;
        return;
      }
      if (f !== 0) {
        curHasWord = true;
        if ((f & IN_PUNCT_CHARS) !== 0) seenPeriod = true;
      }
    };
    const visitSpan = (start: number, end: number, h: number): void => {
      let s = cache.find(text, start, end, h);
      if (s < 0) s = this.miss(text, start, end, h);
      const slots = cache.slots;
      const flags = this.flags;
      const cnt = slots[s + 2]!;
      if (cnt === 1) visit(flags[slots[s + 3]!]!);
      else {
        const vals = cache.vals;
        for (let k = slots[s + 3]!, e = k + cnt; k < e; k++) visit(flags[vals[k]!]!);
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
          if (inWs) visit(0);
          else visitSpan(start, i, h);
        }
        start = c === 0x20 ? i + 1 : i;
        inWs = !inWs;
        h = FNV_OFFSET;
      }
      if (!ws) h = Math.imul(h ^ c, FNV_PRIME);
    }
    if (start < n) {
      if (inWs) visit(0);
      else visitSpan(start, n, h);
    }
    if (curHasWord) sentences++;
    return sentences;
  }

  /** Tokens of one whitespace-free span. */
  span(span: string): readonly string[] {
    this.startCall();
    let h = FNV_OFFSET;
    for (let i = 0; i < span.length; i++) h = Math.imul(h ^ span.charCodeAt(i), FNV_PRIME);
    let s = this.cache.find(span, 0, span.length, h);
    if (s < 0) s = this.miss(span, 0, span.length, h);
    const slots = this.cache.slots;
    const cnt = slots[s + 2]!;
    if (cnt === 1) return [this.texts[slots[s + 3]!]!];
    return Array.from(this.cache.vals.subarray(slots[s + 3]!, slots[s + 3]! + cnt), (id) => this.texts[id]!);
  }

  /**
   * A full token table is emptied here, between calls, so the ids of one call's result stay
   * consistent (a new epoch). A full span cache is emptied whenever it fills ({@link miss}): ids
   * outlive it.
   */
  private startCall(): void {
    if (this.texts.length < this.maxVocabEntries) return;
    this.cache.clear();
    this.vocab.clear();
    this.texts = [];
    this.epochNo++;
  }

  /** Tokenize `text[start, end)` (whitespace-free, FNV-1a hash `hash`) and cache it; returns its slot. */
  private miss(text: string, start: number, end: number, hash: number): number {
    const span = text.slice(start, end);
    const toks = this.specials.get(span) ?? (isAsciiLetters(span) ? [span] : this.applySpecialMatches(this.tokenizeSpan(span, true)));
    const ids = new Array<number>(toks.length);
    for (let k = 0; k < toks.length; k++) ids[k] = this.intern(toks[k]!);
    if (this.cache.size >= this.maxCacheEntries) this.cache.clear();
    return this.cache.insert(text, start, end, hash, ids.length === 1 ? ids[0]! : ids);
  }

  private intern(t: string): number {
    let id = this.vocab.get(t);
    if (id !== undefined) return id;
    const own = flatCopy(t);
    id = this.newId(own);
    this.vocab.set(own, id);
    return id;
  }

  private newId(t: string): number {
    const id = this.texts.length;
    this.texts.push(t);
    if (id >= this.lens.length) {
      const lens = new Int32Array(2 * this.lens.length);
      lens.set(this.lens);
      this.lens = lens;
      const flags = new Uint8Array(2 * this.flags.length);
      flags.set(this.flags);
      this.flags = flags;
    }
    let ascii = true;
    let punct = true;
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      if (PUNCT_ASCII[c] === 0) punct = false;
    }
    if (!ascii || t.length === 0) punct = isPunct(t);
    this.lens[id] = ascii ? t.length : pyLen(t);
    this.flags[id] = TOKEN | (this.punctChars.has(t) ? IN_PUNCT_CHARS : 0) | (punct ? IS_PUNCT : 0);
    return id;
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
    if (ascii && SUFFIX_ONE_ASCII[s.charCodeAt(s.length - 1)] === 1) return 1;
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

/**
 * `s` as a string of its own. V8 makes a slice of 13 or more code units a view into its parent,
 * and a token kept in the token table would then hold its whole document alive. Slicing a
 * concatenation first copies it into a string of its own (V8 flattens it): the result keeps only
 * that copy, one character longer than `s` (half the time of a JSON round trip).
 */
function flatCopy(s: string): string {
  return s.length < 13 ? s : (" " + s).slice(1);
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

const TOKEN = 4;
const IN_PUNCT_CHARS = 1;
const IS_PUNCT = 2;

/**
 * Span → token ids, open addressing over one flat Int32Array of 8-word slots: hash, length, token
 * count, then the token id itself (one token, the common case) or its ids' offset in a pool, then
 * the span's UTF-16 units packed two per word when it has at most 8 (most spans), else their
 * offset in a character pool. A hit mostly reads one slot: no slicing, no string hashing, no
 * JavaScript object. Emptied when full, like spaCy's cache.
 */
class SpanTable {
  /** Slot `s` (a multiple of 8) holds: hash, length (0: free), token count, id or ids offset, key. Replaced when it grows. */
  slots: Int32Array;
  private mask: number;
  private chars = new Uint16Array(1 << 18);
  private charTop = 0;
  /** Token ids of the spans with more than one token. Replaced when it grows. */
  vals = new Int32Array(1 << 16);
  private valTop = 0;
  size = 0;

  /** Starts small and doubles while more than half full. */
  constructor() {
    const cap = 1024;
    this.slots = new Int32Array(8 * cap);
    this.mask = cap - 1;
  }

  /** The slot of `text[start, end)`, or -1. */
  find(text: string, start: number, end: number, hash: number): number {
    const slots = this.slots;
    const len = end - start;
    for (let p = hash & this.mask; ; p = (p + 1) & this.mask) {
      const s = p << 3;
      const l = slots[s + 1]!;
      // Spans are never empty: length 0 marks a free slot.
      if (l === 0) return -1;
      if (l !== len || slots[s]! !== hash) continue;
      let j = 0;
      if (len <= INLINE_UNITS) {
        for (let q = s + 4; j < len; j += 2, q++) {
          const pair = text.charCodeAt(start + j) | (j + 1 < len ? text.charCodeAt(start + j + 1) << 16 : 0);
          if (slots[q] !== pair) break;
        }
      } else {
        const chars = this.chars;
        const k = slots[s + 4]!;
        while (j < len && chars[k + j] === text.charCodeAt(start + j)) j++;
      }
      if (j >= len) return s;
    }
  }

  /** Store `text[start, end)` with its token ids (one id given as a number); returns its slot. */
  insert(text: string, start: number, end: number, hash: number, ids: number | readonly number[]): number {
    const len = end - start;
    // Kept at most half full (whoever fills it past its planned size gets a larger table).
    if (2 * (this.size + 1) > this.mask + 1) this.grow();
    let p = hash & this.mask;
    while (this.slots[(p << 3) + 1] !== 0) p = (p + 1) & this.mask;
    const s = p << 3;
    const slots = this.slots;
    slots[s] = hash;
    slots[s + 1] = len;
    if (typeof ids === "number") {
      slots[s + 2] = 1;
      slots[s + 3] = ids;
    } else {
      slots[s + 2] = ids.length;
      if (this.valTop + ids.length > this.vals.length) {
        const v = new Int32Array(Math.max(2 * this.vals.length, this.valTop + ids.length));
        v.set(this.vals.subarray(0, this.valTop));
        this.vals = v;
      }
      slots[s + 3] = this.valTop;
      for (let j = 0; j < ids.length; j++) this.vals[this.valTop++] = ids[j]!;
    }
    if (len <= INLINE_UNITS) {
      for (let j = 0, q = s + 4; j < len; j += 2, q++) slots[q] = text.charCodeAt(start + j) | (j + 1 < len ? text.charCodeAt(start + j + 1) << 16 : 0);
    } else {
      if (this.charTop + len > this.chars.length) {
        const c = new Uint16Array(Math.max(2 * this.chars.length, this.charTop + len));
        c.set(this.chars.subarray(0, this.charTop));
        this.chars = c;
      }
      slots[s + 4] = this.charTop;
      for (let j = 0; j < len; j++) this.chars[this.charTop++] = text.charCodeAt(start + j);
    }
    this.size++;
    return s;
  }

  private grow(): void {
    const old = this.slots;
    const cap = 2 * (this.mask + 1);
    const mask = cap - 1;
    const slots = new Int32Array(8 * cap);
    for (let s = 0; s < old.length; s += 8) {
      if (old[s + 1] === 0) continue;
      let p = old[s]! & mask;
      while (slots[(p << 3) + 1] !== 0) p = (p + 1) & mask;
      const d = p << 3;
      for (let k = 0; k < 8; k++) slots[d + k] = old[s + k]!;
    }
    this.slots = slots;
    this.mask = mask;
  }

  clear(): void {
    this.slots.fill(0);
    this.charTop = 0;
    this.valTop = 0;
    this.size = 0;
  }
}

/** Spans of at most this many UTF-16 units are stored in their slot (4 words, 2 units each). */
const INLINE_UNITS = 8;

/**
 * `[A-Za-z]+`: a span no affix, infix or URL rule touches, so (when it is no special case) its only
 * token is itself. No prefix alternative matches a letter run (`US$`, `C$`, `A$` need the `$`), no
 * suffix one ends in a letter without a digit or an apostrophe before it, the ASCII infix
 * trigger has no letter in it, and a URL needs a dot. A one-token span matches no special-case
 * pattern: a one-token pattern is a special case whose own affix rules fire, so not letters only.
 */
function isAsciiLetters(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) | 0x20;
    if (c < 0x61 || c > 0x7a) return false;
  }
  return true;
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
// Last characters of an ASCII span for which the suffix is that character alone: each is a bare
// `c$` alternative, and no other alternative that can match ASCII text ends in it (the longer
// ones end in `.`, `+`, `$`, `%`, `s`/`S` or a unit's letter), so every match ends in the one-
// character one and the leftmost is at the last character. Checked against the regex on every
// suffix search of the bench corpus (1.28 M) and 2.2 M random and corpus-derived ASCII strings:
// no difference; the tokenizer test pins cases.
const SUFFIX_ONE_ASCII = asciiTable(",:;!?()[]{}<>_#*&'\"`");

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
/** ASCII characters in a Unicode `P*` category. */
const PUNCT_ASCII = Uint8Array.from({ length: 128 }, (_, c) => (PUNCT_RE.test(String.fromCharCode(c)) ? 1 : 0));

/** spaCy's `is_punct` lexical attribute: every character is in a Unicode `P*` category. */
export function isPunct(text: string): boolean {
  return PUNCT_RE.test(text);
}
