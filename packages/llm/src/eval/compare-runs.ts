import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { bleuFromStats, bleuSegmentStats, sumStats } from "../metrics/bleu.js";
import { chrfFromStats, chrfSegmentStats } from "../metrics/chrf.js";
import { quantileLinear } from "../metrics/numeric.js";
import { terSegmentStats } from "../metrics/ter.js";
import type { OpenAIClient } from "../client/openai-client.js";
import { PairwiseJudge } from "../judges/pairwise-judge.js";
import { seededRandom } from "./bootstrap.js";
import type { EvalReport, EvalSample } from "./run-evaluation.js";

/** One metric of a comparison. */
export interface MetricComparison {
  a: number;
  b: number;
  /** b − a. */
  delta: number;
  /** Paired bootstrap 95% interval of b − a over the samples both runs share. */
  delta_ci?: { low: number; high: number };
  /** Paired bootstrap two-sided p-value for "no difference" (approximate). */
  p_value?: number;
}

/** The result of {@link compareRuns}. */
export interface RunComparison {
  a: string;
  b: string;
  /** Samples present (and scored) in both runs, matched by id, else by index. */
  paired: number;
  metrics: Record<string, MetricComparison>;
  /** Pairwise LLM-judge verdicts over the shared samples, when a judge was given. */
  pairwise?: { a_wins: number; b_wins: number; ties: number; parse_failures: number; judged: number; b_win_rate: number };
}

/** Options of {@link compareRuns}. */
export interface CompareRunsOptions {
  /** Paired bootstrap resamples. @default 1000 */
  samples?: number;
  seed?: number;
  /** Judge every shared sample's two predictions with a {@link PairwiseJudge} on this client. */
  judge?: OpenAIClient;
  /** What the pairwise judge weighs. */
  criteria?: string;
  /** Judge at most this many pairs (the first ones). */
  maxJudged?: number;
}

async function loadRun(dir: string): Promise<{ report: EvalReport; samples: EvalSample[] }> {
  const report = JSON.parse(await readFile(join(dir, "report.json"), "utf8")) as EvalReport;
  let samples: EvalSample[] = [];
  try {
    samples = (await readFile(join(dir, "samples.jsonl"), "utf8"))
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as EvalSample);
  } catch {
    /* a report alone still compares, without intervals */
  }
  return { report, samples };
}

const keyOf = (s: EvalSample) => (s.id !== undefined ? `id:${JSON.stringify(s.id)}` : `ix:${s.index}`);

/**
 * Compares two evaluation runs (folders with `report.json` and `samples.jsonl`): per metric the
 * values, their difference, and a paired bootstrap interval and p-value over shared samples
 * (corpus BLEU/chrF/TER resample segment statistics, as sacrebleu's paired bootstrap does).
 *
 * @example
 * const cmp = await compareRuns("runs/base", "runs/tuned");
 * cmp.metrics.bleu?.delta
 */
export async function compareRuns(dirA: string, dirB: string, options: CompareRunsOptions = {}): Promise<RunComparison> {
  const A = await loadRun(dirA);
  const B = await loadRun(dirB);
  const bByKey = new Map(B.samples.filter((s) => s.error === undefined).map((s) => [keyOf(s), s]));
  const pairs: [EvalSample, EvalSample][] = [];
  for (const s of A.samples) {
    if (s.error !== undefined) continue;
    const t = bByKey.get(keyOf(s));
    if (t) pairs.push([s, t]);
  }
  const nBoot = options.samples ?? 1000;
  const out: Record<string, MetricComparison> = {};
  for (const [name, a] of Object.entries(A.report.metrics)) {
    const b = B.report.metrics[name];
    if (b === undefined) continue;
    const cmp: MetricComparison = { a, b, delta: b - a };
    const stat = pairedStatistic(name, pairs);
    if (stat && pairs.length > 0 && nBoot > 0) {
      const rand = seededRandom(options.seed ?? 0);
      const deltas: number[] = [];
      const idx = new Uint32Array(pairs.length);
      for (let k = 0; k < nBoot; k++) {
        for (let i = 0; i < idx.length; i++) idx[i] = Math.floor(rand() * idx.length);
        deltas.push(stat(idx));
      }
      const [low, high] = quantileLinear(deltas, [0.025, 0.975]);
      cmp.delta_ci = { low: low!, high: high! };
      const le = deltas.filter((d) => d <= 0).length / nBoot;
      const ge = deltas.filter((d) => d >= 0).length / nBoot;
      cmp.p_value = Math.min(1, 2 * Math.min(le, ge));
    }
    out[name] = cmp;
  }
  const result: RunComparison = { a: dirA, b: dirB, paired: pairs.length, metrics: out };
  if (options.judge) {
    const judge = new PairwiseJudge({ client: options.judge, ...(options.criteria ? { criteria: options.criteria } : {}) });
    const chosen = pairs.slice(0, options.maxJudged ?? pairs.length);
    const verdicts = await Promise.all(chosen.map(([x, y], i) => judge.compare(x.input, x.prediction, y.prediction, { cacheSalt: `compare:${i}` })));
    const pw = { a_wins: 0, b_wins: 0, ties: 0, parse_failures: 0, judged: verdicts.length, b_win_rate: 0 };
    for (const v of verdicts) {
      if (v.status === "parse_failure") pw.parse_failures++;
      else if (v.winner === "A") pw.a_wins++;
      else if (v.winner === "B") pw.b_wins++;
      else pw.ties++;
    }
    // Ties count half; parse failures are left out of the rate (and reported on their own).
    const decided = pw.a_wins + pw.b_wins + pw.ties;
    pw.b_win_rate = decided ? (pw.b_wins + pw.ties / 2) / decided : 0;
    result.pairwise = pw;
  }
  return result;
}

function pairedStatistic(name: string, pairs: [EvalSample, EvalSample][]): ((idx: Uint32Array) => number) | undefined {
  const gather = (seg: number[][], idx: Uint32Array) => sumStats(Array.from(idx, (i) => seg[i]!));
  if (name === "bleu") {
    const sa = pairs.map(([x]) => bleuSegmentStats(x.prediction, x.references));
    const sb = pairs.map(([, y]) => bleuSegmentStats(y.prediction, y.references));
    return (idx) => bleuFromStats(gather(sb, idx)).score - bleuFromStats(gather(sa, idx)).score;
  }
  if (name === "chrf") {
    const sa = pairs.map(([x]) => chrfSegmentStats(x.prediction, x.references));
    const sb = pairs.map(([, y]) => chrfSegmentStats(y.prediction, y.references));
    return (idx) => chrfFromStats(gather(sb, idx)) - chrfFromStats(gather(sa, idx));
  }
  if (name === "ter") {
    const sa = pairs.map(([x]) => terSegmentStats(x.prediction, x.references));
    const sb = pairs.map(([, y]) => terSegmentStats(y.prediction, y.references));
    const ter = (s: number[]) => (s[1]! > 0 ? (100 * s[0]!) / s[1]! : s[0]! > 0 ? 100 : 0);
    return (idx) => ter(gather(sb, idx)) - ter(gather(sa, idx));
  }
  if (!pairs.every(([x, y]) => x.metrics[name] !== undefined && y.metrics[name] !== undefined)) return undefined;
  const d = pairs.map(([x, y]) => y.metrics[name]! - x.metrics[name]!);
  return (idx) => {
    let s = 0;
    for (const i of idx) s += d[i]!;
    return s / idx.length;
  };
}
