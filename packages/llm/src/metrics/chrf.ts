import { SACREBLEU_VERSION, referencesBySegment, sumStats } from "./bleu.js";
import { type Counter, countItems, counterTotal } from "./counter.js";
import { codePoints, pyFormatFixed, pyLower, pySplit } from "./python-text.js";

/** Options of {@link corpusChrf}, named after sacrebleu's `CHRF(...)` arguments. */
export interface ChrfOptions {
  /** Character n-gram order. @default 6 */
  char_order?: number;
  /** Word n-gram order; 2 gives chrF++. @default 0 */
  word_order?: number;
  /** Weight of recall over precision. @default 2 */
  beta?: number;
  /** @default false */
  lowercase?: boolean;
  /** Keep whitespace in character n-grams. @default false */
  whitespace?: boolean;
  /** Epsilon smoothing (chrF++.py / NLTK behaviour) instead of effective order. @default false */
  eps_smoothing?: boolean;
}

/** A chrF result, as sacrebleu's `CHRFScore`. */
export interface ChrfScore {
  /** chrF on the 0–100 scale. */
  score: number;
  /** e.g. `chrF2` or `chrF2++`. */
  name: string;
  signature: string;
  /** sacrebleu's `str(score)`, e.g. `chrF2 = 59.73`. */
  formatted: string;
}

const PUNCTS = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

interface Resolved {
  char_order: number;
  word_order: number;
  beta: number;
  lowercase: boolean;
  whitespace: boolean;
  eps_smoothing: boolean;
}

function resolve(o: ChrfOptions): Resolved {
  return {
    char_order: o.char_order ?? 6,
    word_order: o.word_order ?? 0,
    beta: o.beta ?? 2,
    lowercase: o.lowercase ?? false,
    whitespace: o.whitespace ?? false,
    eps_smoothing: o.eps_smoothing ?? false,
  };
}

function charNgrams(line: string, maxOrder: number, whitespace: boolean): Counter[] {
  const chars = codePoints(whitespace ? line : pySplit(line).join(""));
  const out: Counter[] = [];
  for (let n = 1; n <= maxOrder; n++) {
    const grams: string[] = [];
    for (let i = 0; i + n <= chars.length; i++) grams.push(chars.slice(i, i + n).join(""));
    out.push(countItems(grams));
  }
  return out;
}

function wordNgrams(tokens: string[], n: number): Counter {
  const grams: string[] = [];
  for (let i = 0; i + n <= tokens.length; i++) grams.push(tokens.slice(i, i + n).join(" "));
  return countItems(grams);
}

/** sacrebleu `CHRF._remove_punctuation`: splits one leading or trailing punctuation mark off each word. */
function removePunctuation(sent: string): string[] {
  const out: string[] = [];
  for (const w of pySplit(sent)) {
    const cps = codePoints(w);
    if (cps.length === 1) out.push(w);
    else if (PUNCTS.has(cps[cps.length - 1]!)) out.push(cps.slice(0, -1).join(""), cps[cps.length - 1]!);
    else if (PUNCTS.has(cps[0]!)) out.push(cps[0]!, cps.slice(1).join(""));
    else out.push(w);
  }
  return out;
}

function allNgrams(sent: string, o: Resolved): Counter[] {
  const stats = charNgrams(sent, o.char_order, o.whitespace);
  if (o.word_order > 0) {
    const words = removePunctuation(sent);
    for (let n = 1; n <= o.word_order; n++) stats.push(wordNgrams(words, n));
  }
  return stats;
}

function matchStats(hyp: Counter, ref: Counter): [number, number, number] {
  let match = 0;
  let hypCount = 0;
  for (const [g, c] of hyp) {
    hypCount += c;
    const r = ref.get(g);
    if (r !== undefined) match += Math.min(c, r);
  }
  return [ref.size > 0 ? hypCount : 0, counterTotal(ref), match];
}

/** sacrebleu `CHRF._compute_f_score` over flattened `[hyp, ref, match]` triples. */
export function chrfFromStats(stats: readonly number[], options: ChrfOptions = {}): number {
  const o = resolve(options);
  const order = o.char_order + o.word_order;
  const eps = 1e-16;
  let score = 0.0;
  let effectiveOrder = 0;
  const factor = o.beta ** 2;
  let avgPrec = 0.0;
  let avgRec = 0.0;
  for (let i = 0; i < order; i++) {
    const nHyp = stats[3 * i]!;
    const nRef = stats[3 * i + 1]!;
    const nMatch = stats[3 * i + 2]!;
    const prec = nHyp > 0 ? nMatch / nHyp : eps;
    const rec = nRef > 0 ? nMatch / nRef : eps;
    const denom = factor * prec + rec;
    score += denom > 0 ? ((1 + factor) * prec * rec) / denom : eps;
    if (nHyp > 0 && nRef > 0) {
      avgPrec += prec;
      avgRec += rec;
      effectiveOrder += 1;
    }
  }
  if (o.eps_smoothing) return (100 * score) / order;
  if (effectiveOrder === 0) {
    avgPrec = avgRec = 0.0;
  } else {
    avgPrec /= effectiveOrder;
    avgRec /= effectiveOrder;
  }
  if (avgPrec + avgRec) {
    let s = (1 + factor) * avgPrec * avgRec;
    s /= factor * avgPrec + avgRec;
    return 100 * s;
  }
  return 0.0;
}

/** Best `[hyp, ref, match]` statistics of one hypothesis over its references (by segment chrF). */
export function chrfSegmentStats(hypothesis: string, references: readonly string[], options: ChrfOptions = {}): number[] {
  const o = resolve(options);
  const prep = (s: string) => (o.lowercase ? pyLower(s) : s);
  const hypNgrams = allNgrams(prep(hypothesis), o);
  let best: number[] = [];
  let bestF = -1.0;
  for (const ref of references) {
    const refNgrams = allNgrams(prep(ref), o);
    const stats: number[] = [];
    for (let i = 0; i < hypNgrams.length && i < refNgrams.length; i++) stats.push(...matchStats(hypNgrams[i]!, refNgrams[i]!));
    const f = chrfFromStats(stats, o);
    if (f > bestF) {
      bestF = f;
      best = stats;
    }
  }
  return best;
}

function signature(o: Resolved, numRefs: number): string {
  const nrefs = numRefs === -1 ? "var" : String(numRefs);
  return (
    `nrefs:${nrefs}|case:${o.lowercase ? "lc" : "mixed"}|eff:${o.eps_smoothing ? "no" : "yes"}|nc:${o.char_order}|` +
    `nw:${o.word_order}|space:${o.whitespace ? "yes" : "no"}|version:${SACREBLEU_VERSION}`
  );
}

/**
 * Corpus chrF, identical to `sacrebleu.metrics.CHRF(**options).corpus_score(hypotheses, references)`
 * (chrF2 by default; `word_order: 2` for chrF++). `references[k][i]` is the k-th reference of segment i.
 *
 * @example
 * corpusChrf(["the cat sat on the mat"], [["the cat sat on the mat"]]).score // → 100
 */
export function corpusChrf(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null | undefined)[])[],
  options: ChrfOptions = {},
): ChrfScore {
  const o = resolve(options);
  const { refs, numRefs } = referencesBySegment(references, hypotheses.length);
  const stats = hypotheses.map((h, i) => chrfSegmentStats(h, refs[i]!, o));
  const summed = stats.length === 0 ? new Array<number>(3 * (o.char_order + o.word_order)).fill(0) : sumStats(stats);
  const score = chrfFromStats(summed, o);
  const name = `chrF${o.beta}${"+".repeat(o.word_order)}`;
  return { score, name, signature: signature(o, numRefs), formatted: `${name} = ${pyFormatFixed(score, 2)}` };
}

/**
 * Sentence chrF, identical to `sacrebleu.metrics.CHRF(**options).sentence_score(hypothesis, references)`.
 *
 * @example
 * sentenceChrf("the cat sat on the mta", ["the cat sat on the mat"]).score
 */
export function sentenceChrf(hypothesis: string, references: readonly string[], options: ChrfOptions = {}): ChrfScore {
  return corpusChrf([hypothesis], references.map((r) => [r]), options);
}
