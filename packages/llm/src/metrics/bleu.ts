import { exactExp, exactLog } from "./exact-math.js";
import { type Counter, countItems } from "./counter.js";
import { pyFormatFixed, pyLower, pyRstrip, pySplit } from "./python-text.js";
import { tokenize13a, tokenizeNone } from "./tokenizer-13a.js";

/** The sacrebleu version whose behaviour (and signature string) these metrics reproduce. */
export const SACREBLEU_VERSION = "2.6.0";

const MAX_NGRAM_ORDER = 4;

/** Options of {@link corpusBleu}, named after sacrebleu's `BLEU(...)` arguments. */
export interface BleuOptions {
  /** Lower-case hypotheses and references first. @default false */
  lowercase?: boolean;
  /** Tokenizer. @default "13a" */
  tokenize?: "13a" | "none";
  /** Smoothing method. @default "exp" */
  smooth_method?: "none" | "floor" | "add-k" | "exp";
  /** Value for `floor` (default 0.1) and `add-k` (default 1). */
  smooth_value?: number;
  /** Highest n-gram order. @default 4 */
  max_ngram_order?: number;
  /** Stop at the highest order with matches (for sentence-level BLEU). @default false */
  effective_order?: boolean;
}

/** A BLEU result with its sufficient statistics, as sacrebleu's `BLEUScore`. */
export interface BleuScore {
  /** BLEU on the 0–100 scale. */
  score: number;
  /** Matched n-grams per order. */
  counts: number[];
  /** Hypothesis n-grams per order. */
  totals: number[];
  /** Precision per order, in percent. */
  precisions: number[];
  /** Brevity penalty. */
  bp: number;
  sys_len: number;
  ref_len: number;
  /** `sys_len / ref_len` (0 when `ref_len` is 0). */
  ratio: number;
  /** sacrebleu's reproducibility signature, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`. */
  signature: string;
  /** sacrebleu's `str(score)`, e.g. `BLEU = 26.47 78.6/50.0/20.0/6.2 (BP = 1.000 ratio = 1.167 hyp_len = 14 ref_len = 12)`. */
  formatted: string;
}

const SMOOTH_DEFAULTS: Record<NonNullable<BleuOptions["smooth_method"]>, number | null> = {
  none: null,
  floor: 0.1,
  "add-k": 1,
  exp: null,
};

interface ResolvedBleuOptions {
  lowercase: boolean;
  tokenize: "13a" | "none";
  smooth_method: NonNullable<BleuOptions["smooth_method"]>;
  smooth_value: number | undefined;
  max_ngram_order: number;
  effective_order: boolean;
}

function resolve(o: BleuOptions): ResolvedBleuOptions {
  return {
    lowercase: o.lowercase ?? false,
    tokenize: o.tokenize ?? "13a",
    smooth_method: o.smooth_method ?? "exp",
    smooth_value: o.smooth_value,
    max_ngram_order: o.max_ngram_order ?? MAX_NGRAM_ORDER,
    effective_order: o.effective_order ?? false,
  };
}

/** sacrebleu's `BLEU._preprocess_segment`: optional lower-casing, `rstrip`, tokenisation. */
export function bleuPreprocess(sentence: string, options: BleuOptions = {}): string {
  const o = resolve(options);
  let s = sentence;
  if (o.lowercase) s = pyLower(s);
  s = pyRstrip(s);
  return o.tokenize === "13a" ? tokenize13a(s) : tokenizeNone(s);
}

/** All word n-grams of orders 1..maxOrder (keys are tokens joined by a space) and the token count. */
function extractNgrams(line: string, maxOrder: number): { ngrams: Counter; len: number; orderOf: Map<string, number> } {
  const tokens = pySplit(line);
  const grams: string[] = [];
  const orderOf = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const g = tokens.slice(i, i + n).join(" ");
      grams.push(g);
      orderOf.set(g, n);
    }
  }
  return { ngrams: countItems(grams), len: tokens.length, orderOf };
}

function closestRefLen(hypLen: number, refLens: number[]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const refLen of refLens) {
    const diff = Math.abs(hypLen - refLen);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = refLen;
    } else if (diff === closestDiff && refLen < closestLen) {
      closestLen = refLen;
    }
  }
  return closestLen;
}

/** Segment statistics `[hyp_len, ref_len, correct_1..N, total_1..N]` as sacrebleu computes them. */
export function bleuSegmentStats(hypothesis: string, references: readonly string[], options: BleuOptions = {}): number[] {
  const o = resolve(options);
  const N = o.max_ngram_order;
  let refNgrams: Counter | undefined;
  const refLens: number[] = [];
  for (const ref of references) {
    const r = extractNgrams(bleuPreprocess(ref, o), N);
    refLens.push(r.len);
    if (refNgrams === undefined) refNgrams = r.ngrams;
    else for (const [g, c] of r.ngrams) refNgrams.set(g, Math.max(refNgrams.get(g) ?? 0, c));
  }
  const hyp = extractNgrams(bleuPreprocess(hypothesis, o), N);
  const refLen = closestRefLen(hyp.len, refLens);
  const correct = new Array<number>(N).fill(0);
  const total = new Array<number>(N).fill(0);
  for (const [g, count] of hyp.ngrams) {
    const n = hyp.orderOf.get(g)! - 1;
    total[n]! += count;
    const rc = refNgrams?.get(g);
    if (rc !== undefined) correct[n]! += Math.min(count, rc);
  }
  return [hyp.len, refLen, ...correct, ...total];
}

function myLog(x: number): number {
  return x === 0 ? -9999999999 : exactLog(x);
}

/** sacrebleu's `BLEU.compute_bleu` from summed statistics. */
export function bleuFromStats(stats: readonly number[], options: BleuOptions = {}, numRefs = 1): BleuScore {
  const o = resolve(options);
  const N = o.max_ngram_order;
  const sysLen = stats[0]!;
  const refLen = stats[1]!;
  const correct = stats.slice(2, 2 + N);
  const total = stats.slice(2 + N, 2 + 2 * N);
  const smoothValue = o.smooth_value ?? SMOOTH_DEFAULTS[o.smooth_method] ?? 0;

  let bp = 1.0;
  if (sysLen < refLen) bp = sysLen > 0 ? exactExp(1 - refLen / sysLen) : 0.0;
  const precisions = new Array<number>(N).fill(0);
  let score: number;
  if (!correct.some((c) => c !== 0)) {
    score = 0.0;
  } else {
    let smoothMteval = 1;
    let effOrder = N;
    for (let n = 1; n <= N; n++) {
      if (o.smooth_method === "add-k" && n > 1) {
        correct[n - 1]! += smoothValue;
        total[n - 1]! += smoothValue;
      }
      if (total[n - 1] === 0) break;
      if (o.effective_order) effOrder = n;
      if (correct[n - 1] === 0) {
        if (o.smooth_method === "exp") {
          smoothMteval *= 2;
          precisions[n - 1] = 100 / (smoothMteval * total[n - 1]!);
        } else if (o.smooth_method === "floor") {
          precisions[n - 1] = (100 * smoothValue) / total[n - 1]!;
        }
      } else {
        precisions[n - 1] = (100 * correct[n - 1]!) / total[n - 1]!;
      }
    }
    // Python's sum() adds left to right from 0; keep that order for bit-identical results.
    let logSum = 0;
    for (let i = 0; i < effOrder; i++) logSum += myLog(precisions[i]!);
    score = bp * exactExp(logSum / effOrder);
  }
  const ratio = refLen ? sysLen / refLen : 0;
  const signature = bleuSignature(o, numRefs);
  const precStr = precisions.map((p) => pyFormatFixed(p, 1)).join("/");
  const formatted =
    `BLEU = ${pyFormatFixed(score, 2)} ${precStr} (BP = ${pyFormatFixed(bp, 3)} ` +
    `ratio = ${pyFormatFixed(ratio, 3)} hyp_len = ${sysLen} ref_len = ${refLen})`;
  return { score, counts: correct, totals: total, precisions, bp, sys_len: sysLen, ref_len: refLen, ratio, signature, formatted };
}

function bleuSignature(o: ResolvedBleuOptions, numRefs: number): string {
  let smooth: string = o.smooth_method;
  const def = SMOOTH_DEFAULTS[o.smooth_method];
  if (def !== null) smooth += `[${pyFormatFixed(o.smooth_value ?? def, 2)}]`;
  const nrefs = numRefs === -1 ? "var" : String(numRefs);
  return `nrefs:${nrefs}|case:${o.lowercase ? "lc" : "mixed"}|eff:${o.effective_order ? "yes" : "no"}|tok:${o.tokenize}|smooth:${smooth}|version:${SACREBLEU_VERSION}`;
}

/**
 * Segments of reference streams, transposed: `references[k][i]` (k-th reference of segment i,
 * sacrebleu's layout) → per segment the list of its references, `null`/`undefined` skipped.
 */
export function referencesBySegment(
  references: readonly (readonly (string | null | undefined)[])[],
  segments: number,
): { refs: string[][]; numRefs: number } {
  const refs: string[][] = [];
  const counts = new Set<number>();
  for (let i = 0; i < segments; i++) {
    const lines: string[] = [];
    for (const stream of references) {
      const r = stream[i];
      if (r !== null && r !== undefined) lines.push(r);
    }
    counts.add(lines.length);
    refs.push(lines);
  }
  return { refs, numRefs: counts.size === 1 ? [...counts][0]! : -1 };
}

/** Adds segment statistics column-wise (sacrebleu `sum_of_lists`). */
export function sumStats(stats: readonly (readonly number[])[]): number[] {
  if (stats.length === 0) return [];
  const total = new Array<number>(stats[0]!.length).fill(0);
  for (const s of stats) for (let i = 0; i < total.length; i++) total[i]! += s[i]!;
  return total;
}

/**
 * Corpus BLEU, identical to `sacrebleu.metrics.BLEU(**options).corpus_score(hypotheses, references)`.
 * `references[k][i]` is the k-th reference of segment i.
 *
 * @example
 * corpusBleu(["the cat sat on the mat"], [["the cat sat on the mat"]]).score // → 100
 */
export function corpusBleu(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null | undefined)[])[],
  options: BleuOptions = {},
): BleuScore {
  const { refs, numRefs } = referencesBySegment(references, hypotheses.length);
  const stats = hypotheses.map((h, i) => bleuSegmentStats(h, refs[i]!, options));
  const summed = stats.length === 0 ? new Array<number>(2 + 2 * (options.max_ngram_order ?? MAX_NGRAM_ORDER)).fill(0) : sumStats(stats);
  return bleuFromStats(summed, options, numRefs);
}

/**
 * Sentence BLEU, identical to `sacrebleu.sentence_bleu(hypothesis, references)`
 * (`BLEU(effective_order=True).sentence_score`).
 *
 * @example
 * sentenceBleu("The cat", ["The cat sat"]).score // → 60.65306597126334
 */
export function sentenceBleu(hypothesis: string, references: readonly string[], options: BleuOptions = {}): BleuScore {
  const o = { effective_order: true, ...options };
  return corpusBleu([hypothesis], references.map((r) => [r]), o);
}
