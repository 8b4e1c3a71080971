import { SACREBLEU_VERSION, referencesBySegment, sumStats } from "./bleu.js";
import { pyCompareStrings, pyFormatFixed, pyLower, pyRstrip, pySplit } from "./python-text.js";

/** Options of {@link corpusTer}, named after sacrebleu's `TER(...)` arguments. */
export interface TerOptions {
  /** Tercom normalisation (punctuation tokenisation, XML entities). @default false */
  normalized?: boolean;
  /** Remove punctuation. @default false */
  no_punct?: boolean;
  /** CJK support (with `normalized` or `no_punct`). @default false */
  asian_support?: boolean;
  /** Keep case. @default false */
  case_sensitive?: boolean;
}

/** A TER result, as sacrebleu's `TERScore`. */
export interface TerScore {
  /** TER on the 0–100 scale (edits per reference word ×100; can exceed 100). */
  score: number;
  num_edits: number;
  /** Summed average reference length. */
  ref_length: number;
  signature: string;
  /** e.g. `TER = 40.00`. */
  formatted: string;
}

const ASIAN_PUNCT = /([\u3001\u3002\u3008-\u3011\u3014-\u301f\uff61-\uff65\u30fb])/g;
const FULL_WIDTH_PUNCT = /([\uff0e\uff0c\uff1f\uff1a\uff1b\uff01\uff02\uff08\uff09])/g;

function normalizeGeneralAndWestern(sent: string): string {
  sent = sent.replace(/\n-/g, "").replace(/\n/g, " ");
  sent = sent.replace(/&quot;/g, '"').replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">");
  sent = ` ${sent} `;
  sent = sent.replace(/([{-~[-` -&(-+:-@/])/g, " $1 ");
  sent = sent.replace(/'s /g, " 's ").replace(/'s$/g, " 's");
  sent = sent.replace(/([^0-9])([.,])/g, "$1 $2 ");
  sent = sent.replace(/([.,])([^0-9])/g, " $1 $2");
  sent = sent.replace(/([0-9])(-)/g, "$1 $2 ");
  return sent;
}

function normalizeAsian(sent: string): string {
  sent = sent.replace(/([\u4e00-\u9fff\u3400-\u4dbf])/g, " $1 ");
  sent = sent.replace(/([\u31c0-\u31ef\u2e80-\u2eff])/g, " $1 ");
  sent = sent.replace(/([\u3300-\u33ff\uf900-\ufaff\ufe30-\ufe4f])/g, " $1 ");
  sent = sent.replace(/([\u3200-\u3f22])/g, " $1 ");
  // sacrebleu's kana patterns only ever match a whole string of kana ("^…$" anchors).
  sent = sent.replace(/(^|^[\u3040-\u309f])([\u3040-\u309f]+)(?=$|^[\u3040-\u309f])/g, "$1 $2 ");
  sent = sent.replace(/(^|^[\u30a0-\u30ff])([\u30a0-\u30ff]+)(?=$|^[\u30a0-\u30ff])/g, "$1 $2 ");
  sent = sent.replace(/(^|^[\u31f0-\u31ff])([\u31f0-\u31ff]+)(?=$|^[\u31f0-\u31ff])/g, "$1 $2 ");
  sent = sent.replace(ASIAN_PUNCT, " $1 ").replace(FULL_WIDTH_PUNCT, " $1 ");
  return sent;
}

/** sacrebleu's `TercomTokenizer`. */
export function tokenizeTercom(sent: string, o: TerOptions = {}): string {
  if (!sent) return "";
  if (!o.case_sensitive) sent = pyLower(sent);
  if (o.normalized) {
    sent = normalizeGeneralAndWestern(sent);
    if (o.asian_support) sent = normalizeAsian(sent);
  }
  if (o.no_punct) {
    sent = sent.replace(/[.,?:;!"()]/g, "");
    if (o.asian_support) sent = sent.replace(ASIAN_PUNCT, "").replace(FULL_WIDTH_PUNCT, "");
  }
  return pySplit(sent).join(" ");
}

// --- lib_ter: a transcription of sacrebleu/metrics/lib_ter.py ---------------------------------

const COST_INS = 1;
const COST_DEL = 1;
const COST_SUB = 1;
const MAX_SHIFT_SIZE = 10;
const MAX_SHIFT_DIST = 50;
const BEAM_WIDTH = 25;
const MAX_CACHE_SIZE = 10000;
const MAX_SHIFT_CANDIDATES = 1000;
const INT_INFINITY = 1e16;

const OP_INS = "i";
const OP_DEL = "d";
const OP_NOP = " ";
const OP_SUB = "s";
const OP_UNDEF = "x";

type Cell = readonly [number, string];
interface CacheNode {
  children: Map<string, { next: CacheNode; row: readonly Cell[] }>;
}

/** Edit distance with a prefix cache, a diagonal beam and a trace of operations (sacrebleu `BeamEditDistance`). */
class BeamEditDistance {
  private readonly ref: readonly string[];
  private readonly initialRow: Cell[];
  private readonly emptyRow: Cell[];
  private readonly cache: CacheNode = { children: new Map() };
  private cacheSize = 0;

  constructor(ref: readonly string[]) {
    this.ref = ref;
    this.initialRow = [];
    for (let i = 0; i <= ref.length; i++) this.initialRow.push([i * COST_INS, OP_INS]);
    this.emptyRow = new Array<Cell>(ref.length + 1).fill([INT_INFINITY, OP_UNDEF]);
  }

  distance(hyp: readonly string[]): [number, string] {
    const { start, dist } = this.findCache(hyp);
    const [ed, newRows, trace] = this.editDistance(hyp, start, dist);
    this.addCache(hyp, newRows);
    return [ed, trace];
  }

  private editDistance(hyp: readonly string[], startH: number, cache: (readonly Cell[])[]): [number, (readonly Cell[])[], string] {
    const nH = hyp.length;
    const nR = this.ref.length;
    const dist: Cell[][] = cache.map((r) => r as Cell[]);
    for (let i = 0; i < nH - startH; i++) dist.push(this.emptyRow.slice());
    const lengthRatio = hyp.length ? nR / nH : 1;
    const beamWidth = BEAM_WIDTH < lengthRatio / 2 ? Math.ceil(lengthRatio / 2 + BEAM_WIDTH) : BEAM_WIDTH;
    for (let i = startH + 1; i <= nH; i++) {
      const pseudoDiag = Math.floor(i * lengthRatio);
      const minJ = Math.max(0, pseudoDiag - beamWidth);
      let maxJ = Math.min(nR + 1, pseudoDiag + beamWidth);
      if (i === nH) maxJ = nR + 1;
      const row = dist[i]!;
      const prev = dist[i - 1]!;
      for (let j = minJ; j < maxJ; j++) {
        if (j === 0) {
          row[j] = [prev[j]![0] + COST_DEL, OP_DEL];
        } else {
          let costSub: number;
          let opSub: string;
          if (hyp[i - 1] === this.ref[j - 1]) {
            costSub = 0;
            opSub = OP_NOP;
          } else {
            costSub = COST_SUB;
            opSub = OP_SUB;
          }
          // Preference order as in sacrebleu: no-op/sub, then deletion, then insertion (flipped later).
          const c1 = prev[j - 1]![0] + costSub;
          const c2 = prev[j]![0] + COST_DEL;
          const c3 = row[j - 1]![0] + COST_INS;
          if (row[j]![0] > c1) row[j] = [c1, opSub];
          if (row[j]![0] > c2) row[j] = [c2, OP_DEL];
          if (row[j]![0] > c3) row[j] = [c3, OP_INS];
        }
      }
    }
    let trace = "";
    let i = nH;
    let j = nR;
    const ops: string[] = [];
    while (i > 0 || j > 0) {
      const op = dist[i]![j]![1];
      ops.push(op);
      if (op === OP_SUB || op === OP_NOP) {
        i--;
        j--;
      } else if (op === OP_INS) j--;
      else if (op === OP_DEL) i--;
      else throw new Error(`TER: unknown operation ${JSON.stringify(op)}`);
    }
    trace = ops.reverse().join("");
    return [dist[nH]![nR]![0], dist.slice(cache.length), trace];
  }

  private addCache(hyp: readonly string[], mat: (readonly Cell[])[]): void {
    if (this.cacheSize >= MAX_CACHE_SIZE) return;
    let node = this.cache;
    const skip = hyp.length - mat.length;
    for (let i = 0; i < skip; i++) node = node.children.get(hyp[i]!)!.next;
    for (let k = 0; k < mat.length; k++) {
      const word = hyp[skip + k]!;
      let entry = node.children.get(word);
      if (entry === undefined) {
        entry = { next: { children: new Map() }, row: mat[k]!.slice() };
        node.children.set(word, entry);
        this.cacheSize++;
      }
      node = entry.next;
    }
  }

  private findCache(hyp: readonly string[]): { start: number; dist: (readonly Cell[])[] } {
    let node = this.cache;
    let start = 0;
    const dist: (readonly Cell[])[] = [this.initialRow];
    for (const word of hyp) {
      const entry = node.children.get(word);
      if (entry === undefined) break;
      start++;
      node = entry.next;
      dist.push(entry.row);
    }
    return { start, dist };
  }
}

function flipTrace(trace: string): string {
  let out = "";
  for (const c of trace) out += c === OP_INS ? OP_DEL : c === OP_DEL ? OP_INS : c;
  return out;
}

function traceToAlignment(trace: string): { align: Map<number, number>; refErr: number[]; hypErr: number[] } {
  let posHyp = -1;
  let posRef = -1;
  const hypErr: number[] = [];
  const refErr: number[] = [];
  const align = new Map<number, number>();
  for (const op of trace) {
    if (op === OP_NOP || op === OP_SUB) {
      posHyp++;
      posRef++;
      align.set(posRef, posHyp);
      const e = op === OP_SUB ? 1 : 0;
      hypErr.push(e);
      refErr.push(e);
    } else if (op === OP_INS) {
      posHyp++;
      hypErr.push(1);
    } else if (op === OP_DEL) {
      posRef++;
      align.set(posRef, posHyp);
      refErr.push(1);
    } else throw new Error(`TER: unknown operation ${JSON.stringify(op)}`);
  }
  return { align, refErr, hypErr };
}

function* findShiftedPairs(h: readonly string[], r: readonly string[]): Generator<[number, number, number]> {
  for (let sh = 0; sh < h.length; sh++) {
    for (let sr = 0; sr < r.length; sr++) {
      if (Math.abs(sr - sh) > MAX_SHIFT_DIST) continue;
      let length = 0;
      while (h[sh + length] === r[sr + length] && length < MAX_SHIFT_SIZE) {
        length++;
        yield [sh, sr, length];
        if (h.length === sh + length || r.length === sr + length) break;
      }
    }
  }
}

function performShift(words: readonly string[], start: number, length: number, target: number): string[] {
  if (target < start) {
    return [...words.slice(0, target), ...words.slice(start, start + length), ...words.slice(target, start), ...words.slice(start + length)];
  }
  if (target > start + length) {
    return [...words.slice(0, start), ...words.slice(start + length, target), ...words.slice(start, start + length), ...words.slice(target)];
  }
  return [
    ...words.slice(0, start),
    ...words.slice(start + length, length + target),
    ...words.slice(start, start + length),
    ...words.slice(length + target),
  ];
}

function sumRange(xs: readonly number[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to && i < xs.length; i++) s += xs[i]!;
  return s;
}

type Candidate = [number, number, number, number, string[]];

/** Python tuple ordering for shift candidates, ending with list-of-strings comparison. */
function candidateGreater(a: Candidate, b: Candidate): boolean {
  for (let k = 0; k < 4; k++) if (a[k] !== b[k]) return (a[k] as number) > (b[k] as number);
  const x = a[4];
  const y = b[4];
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const c = pyCompareStrings(x[i]!, y[i]!);
    if (c !== 0) return c > 0;
  }
  return x.length > y.length;
}

function shift(h: string[], r: readonly string[], ed: BeamEditDistance, checked: number): [number, string[], number] {
  const [preScore, invTrace] = ed.distance(h);
  const { align, refErr, hypErr } = traceToAlignment(flipTrace(invTrace));
  let best: Candidate | undefined;
  for (const [startH, startR, length] of findShiftedPairs(h, r)) {
    if (sumRange(hypErr, startH, startH + length) === 0) continue;
    if (sumRange(refErr, startR, startR + length) === 0) continue;
    const a = align.get(startR)!;
    if (startH <= a && a < startH + length) continue;
    let prevIdx = -1;
    for (let offset = -1; offset < length; offset++) {
      let idx: number;
      if (startR + offset === -1) idx = 0;
      else if (align.has(startR + offset)) idx = align.get(startR + offset)! + 1;
      else break;
      if (idx === prevIdx) continue;
      prevIdx = idx;
      const shifted = performShift(h, startH, length, idx);
      const cand: Candidate = [preScore - ed.distance(shifted)[0], length, -startH, -idx, shifted];
      checked++;
      if (best === undefined || candidateGreater(cand, best)) best = cand;
    }
    if (checked >= MAX_SHIFT_CANDIDATES) break;
  }
  if (best === undefined) return [0, h, checked];
  return [best[0], best[4], checked];
}

/**
 * Edits needed to turn a tokenised hypothesis into a reference, with Tercom's greedy block shifts
 * (sacrebleu `translation_edit_rate`). Returns `[edits, reference length]`.
 */
export function translationEditRate(hyp: readonly string[], ref: readonly string[]): [number, number] {
  if (ref.length === 0) return [hyp.length, 0];
  const ed = new BeamEditDistance(ref);
  let shifts = 0;
  let input = hyp.slice();
  let checked = 0;
  for (;;) {
    const [delta, next, c] = shift(input, ref, ed, checked);
    checked = c;
    if (checked >= MAX_SHIFT_CANDIDATES) break;
    if (delta <= 0) break;
    shifts++;
    input = next;
  }
  const [editDistance] = ed.distance(input);
  return [shifts + editDistance, ref.length];
}

/** `[best edits, average reference length]` for one hypothesis against its references. */
export function terSegmentStats(hypothesis: string, references: readonly string[], options: TerOptions = {}): [number, number] {
  const prep = (s: string) => tokenizeTercom(pyRstrip(s), options);
  const hypWords = pySplit(prep(hypothesis));
  let refLengths = 0;
  let best = INT_INFINITY;
  for (const ref of references) {
    const [edits, len] = translationEditRate(hypWords, pySplit(prep(ref)));
    refLengths += len;
    if (edits < best) best = edits;
  }
  return [best, refLengths / references.length];
}

function signature(o: TerOptions, numRefs: number): string {
  const nrefs = numRefs === -1 ? "var" : String(numRefs);
  const yn = (b: boolean) => (b ? "yes" : "no");
  return (
    `nrefs:${nrefs}|case:${o.case_sensitive ? "mixed" : "lc"}|tok:tercom|norm:${yn(!!o.normalized)}|` +
    `punct:${yn(!o.no_punct)}|asian:${yn(!!o.asian_support)}|version:${SACREBLEU_VERSION}`
  );
}

/**
 * Corpus TER, identical to `sacrebleu.metrics.TER(**options).corpus_score(hypotheses, references)`.
 * `references[k][i]` is the k-th reference of segment i.
 *
 * @example
 * corpusTer(["on the mat the cat sat"], [["the cat sat on the mat"]]).score
 */
export function corpusTer(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null | undefined)[])[],
  options: TerOptions = {},
): TerScore {
  const { refs, numRefs } = referencesBySegment(references, hypotheses.length);
  const stats = hypotheses.map((h, i) => terSegmentStats(h, refs[i]!, options));
  const [totalEdits, sumRefLengths] = stats.length === 0 ? [0, 0] : (sumStats(stats) as [number, number]);
  let score: number;
  if (sumRefLengths > 0) score = totalEdits / sumRefLengths;
  else if (totalEdits > 0) score = 1.0;
  else score = 0.0;
  score *= 100;
  return {
    score,
    num_edits: Math.trunc(totalEdits),
    ref_length: sumRefLengths,
    signature: signature(options, numRefs),
    formatted: `TER = ${pyFormatFixed(score, 2)}`,
  };
}

/**
 * Sentence TER, identical to `sacrebleu.metrics.TER(**options).sentence_score(hypothesis, references)`.
 *
 * @example
 * sentenceTer("the cat sat on the mta", ["the cat sat on the mat"]).score // → 16.666666666666664
 */
export function sentenceTer(hypothesis: string, references: readonly string[], options: TerOptions = {}): TerScore {
  return corpusTer([hypothesis], references.map((r) => [r]), options);
}
