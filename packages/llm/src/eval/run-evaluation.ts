import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EvaluateSpec, type EvalMetric } from "@nexa/core";
import type { OpenAIClient, UsageRecord } from "../client/openai-client.js";
import { describeError } from "../errors.js";
import { RubricJudge, type JudgeVerdict } from "../judges/rubric-judge.js";
import { bleuFromStats, bleuSegmentStats, corpusBleu, sumStats } from "../metrics/bleu.js";
import { chrfFromStats, chrfSegmentStats, corpusChrf } from "../metrics/chrf.js";
import { type ClassificationReport, classificationReport } from "../metrics/classification.js";
import { pyStrip } from "../metrics/python-text.js";
import { rouge } from "../metrics/rouge.js";
import { maxOverGroundTruths, squadExactMatch, squadF1 } from "../metrics/squad.js";
import { corpusTer, terSegmentStats } from "../metrics/ter.js";
import { renderChatTemplate } from "../prompts/chat-template.js";
import { buildChatMessages, buildCompletionPrompt, renderTemplate } from "../prompts/prompt-template.js";
import { readJsonl, toJsonl } from "../work/jsonl.js";
import { processItems } from "../work/process-items.js";
import { ProgressStore } from "../work/progress-store.js";
import { type AssertionResult, checkAssertion } from "./assertions.js";
import { type ConfidenceInterval, bootstrapCi, meanAt } from "./bootstrap.js";
import { createEndpointClient } from "./endpoint-client.js";

/** One evaluated row, as written to `samples.jsonl`. */
export interface EvalSample {
  index: number;
  id?: unknown;
  input: string;
  references: string[];
  prediction: string;
  /** Per-sample scores: EM/F1/ROUGE/accuracy in 0–1; sentence BLEU/chrF/TER in 0–100 (for inspection; the report's are corpus-level). */
  metrics: Record<string, number>;
  assertions?: AssertionResult[];
  judge?: JudgeVerdict;
  /** Multiple choice: summed log-likelihood of each option, and the option picked. */
  choice_logprobs?: number[];
  predicted_choice?: number;
  usage?: { prompt_tokens: number; completion_tokens: number };
  cached?: boolean;
  /** Set when the sample's request failed after retries (`on_error: "skip"`); such a sample is not scored. */
  error?: string;
}

/** The aggregate written to `report.json`. */
export interface EvalReport {
  /** `{<metric>: value}`: corpus BLEU/chrF/TER on sacrebleu's 0–100 scale, EM/F1/ROUGE/accuracy as means in 0–1. */
  metrics: Record<string, number>;
  /** Percentile bootstrap intervals per metric (absent when `bootstrap_samples` is 0). */
  confidence_intervals: Record<string, ConfidenceInterval>;
  /** sacrebleu signatures and formatted scores of the corpus metrics. */
  metric_details: Record<string, { signature: string; formatted: string }>;
  counts: { samples: number; scored: number; errors: number; cached: number; restored: number };
  assertions?: { pass_rate: number; by_assertion: { type: string; pass_rate: number }[] };
  /** With `accuracy`: labels (trimmed, lower-cased prediction vs first reference) through scikit-learn-equal precision/recall/F1. */
  classification?: ClassificationReport;
  judge?: { mean_score: number | null; pass_rate: number; parse_failures: number; judged: number; by_dimension: Record<string, number> };
  usage: { prompt_tokens: number; completion_tokens: number };
  endpoint: { base_url: string | undefined; deployment: string | undefined; model: string };
  sampling: Record<string, unknown>;
  spec: { input_field: string; reference_field: string; metrics: EvalMetric[]; bootstrap_samples: number; bootstrap_seed: number };
  created_at: string;
}

/** Inputs of {@link runEvaluation}. */
export interface EvaluationOptions {
  /** An `evaluate` spec (parsed or raw; it is parsed with the core schema). */
  spec: unknown;
  /** The eval dataset as a local JSONL file. */
  datasetPath: string;
  /** Where `samples.jsonl` and `report.json` go. */
  outDir: string;
  /** Checkpoint folder (progress sub-folders with `COMPLETE`). */
  checkpointDir?: string | undefined;
  /** Request cache folder. */
  cacheDir?: string | undefined;
  secret?: ((name: string) => string | undefined) | undefined;
  gatewayUrl?: string | undefined;
  gatewayKey?: string | undefined;
  /** Stops taking new samples; in-flight ones finish within `graceMs`. */
  signal?: AbortSignal | undefined;
  graceMs?: number | undefined;
  onUsage?: ((u: UsageRecord) => void) | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
  log?: ((line: string) => void) | undefined;
  /** Checkpoint interval. @default 2000 */
  checkpointIntervalMs?: number | undefined;
}

/** How {@link runEvaluation} ended. */
export type EvaluationOutcome =
  | { status: "complete"; report: EvalReport; samples: EvalSample[] }
  | { status: "aborted"; done: number; total: number };

/** A dataset row the spec cannot use (no input field, no reference for a reference metric). */
export class EvalDatasetError extends Error {
  override readonly name = "EvalDatasetError";
  readonly retryable = false;
}

const REFERENCE_METRICS: ReadonlySet<EvalMetric> = new Set(["exact_match", "f1", "bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "accuracy", "multiple_choice"]);

function toReferences(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : JSON.stringify(x)));
  return [typeof v === "string" ? v : JSON.stringify(v)];
}

/**
 * Runs an `evaluate` spec: sends each row's input as one user message (after the system prompt and
 * few-shot examples; temperature 0 unless set), scores the replies, and writes `samples.jsonl` and
 * `report.json` to `outDir`. Progress is checkpointed and replies are cached, so an interrupted
 * run resumes without asking again for a finished sample. The `nexa eval run` CLI and the
 * `evaluate` job handler both call this.
 *
 * @example
 * const out = await runEvaluation({ spec: { endpoint: { base_url, model }, dataset: "sha256:…", metrics: ["exact_match", "bleu"] }, datasetPath: "eval.jsonl", outDir: "out" });
 * if (out.status === "complete") console.log(out.report.metrics);
 */
export async function runEvaluation(options: EvaluationOptions): Promise<EvaluationOutcome> {
  const spec = EvaluateSpec.parse(options.spec);
  const rows = await readJsonl(options.datasetPath);
  const metrics = spec.metrics;
  const needsGeneration = metrics.some((m) => m !== "multiple_choice") || spec.assertions !== undefined || spec.judge !== undefined;
  const needsReference = metrics.some((m) => REFERENCE_METRICS.has(m));

  // Check every row before spending a token.
  const prepared = rows.map((row, index) => {
    const raw = row[spec.input_field];
    if (raw === undefined || raw === null) throw new EvalDatasetError(`${options.datasetPath}: row ${index + 1} has no field ${JSON.stringify(spec.input_field)}`);
    const input = typeof raw === "string" ? raw : JSON.stringify(raw);
    const references = toReferences(row[spec.reference_field]);
    if (needsReference && references === undefined) {
      throw new EvalDatasetError(`${options.datasetPath}: row ${index + 1} has no reference field ${JSON.stringify(spec.reference_field)}`);
    }
    const content = spec.prompt_template ? renderTemplate(spec.prompt_template, { ...row, input }) : input;
    let choices: string[] | undefined;
    if (metrics.includes("multiple_choice")) {
      const c = row[spec.choices_field];
      if (!Array.isArray(c) || c.length < 2) throw new EvalDatasetError(`${options.datasetPath}: row ${index + 1} needs ${JSON.stringify(spec.choices_field)} with 2+ options`);
      choices = c.map(String);
    }
    return { index, row, input, content, references: references ?? [], choices };
  });

  const usageTotals = { prompt_tokens: 0, completion_tokens: 0 };
  const env = {
    secret: options.secret,
    gatewayUrl: options.gatewayUrl,
    gatewayKey: options.gatewayKey,
    cacheDir: options.cacheDir,
    onUsage: (u: UsageRecord) => {
      usageTotals.prompt_tokens += u.prompt_tokens;
      usageTotals.completion_tokens += u.completion_tokens;
      options.onUsage?.(u);
    },
  };
  const client = createEndpointClient(spec.endpoint, env);
  const judgeClient = spec.judge ? createEndpointClient(spec.judge.endpoint, env) : undefined;
  const judge =
    spec.judge && judgeClient
      ? new RubricJudge({
          client: judgeClient,
          rubric: spec.judge.rubric,
          threshold: spec.judge.threshold,
          maxParseRetries: spec.judge.max_parse_retries,
          ...(spec.judge.instructions ? { instructions: spec.judge.instructions } : {}),
          ...(spec.judge.sampling ? { sampling: spec.judge.sampling } : {}),
        })
      : undefined;
  const sampling = { temperature: 0, ...(spec.sampling ?? {}) };
  const store = new ProgressStore<EvalSample>(options.checkpointDir, { intervalMs: options.checkpointIntervalMs ?? 2000 });
  await store.load();
  if (store.restored) options.log?.(`resuming: ${store.restored} of ${prepared.length} samples already evaluated`);

  try {
    const result = await processItems(
      prepared.map((p) => ({ key: String(p.index), item: p })),
      async (p, signal) => {
        const sample: EvalSample = { index: p.index, input: p.input, references: p.references, prediction: "", metrics: {} };
        const id = p.row[spec.id_field];
        if (id !== undefined) sample.id = id;
        const call = { signal, cacheSalt: `eval:${p.index}` };
        if (needsGeneration) {
          const messages = buildChatMessages({ system: spec.system, fewShot: spec.few_shot, user: p.content });
          const r = spec.chat_template
            ? await (async () => {
                const rendered = renderChatTemplate(messages, spec.chat_template!);
                const stop = [...rendered.stop, ...(sampling.stop ?? [])];
                return client.complete({ ...sampling, prompt: rendered.prompt, stop }, call);
              })()
            : await client.chat({ ...sampling, messages }, call);
          sample.prediction = r.text;
          sample.cached = r.cached;
          if (r.usage) sample.usage = { prompt_tokens: r.usage.prompt_tokens, completion_tokens: r.usage.completion_tokens };
        }
        if (p.choices) {
          const lls = await scoreChoices(client, buildCompletionPrompt({ system: spec.system, fewShot: spec.few_shot, user: p.content }), p.choices, call);
          sample.choice_logprobs = lls;
          let best = 0;
          for (let i = 1; i < lls.length; i++) if (lls[i]! > lls[best]!) best = i;
          sample.predicted_choice = best;
          if (!needsGeneration) sample.prediction = p.choices[best]!;
          const ref = p.references[0]!;
          const refIndex = /^\d+$/.test(ref) && Number(ref) < p.choices.length ? Number(ref) : p.choices.indexOf(ref);
          sample.metrics.multiple_choice = best === refIndex ? 1 : 0;
        }
        scoreSample(sample, metrics);
        if (spec.assertions) sample.assertions = spec.assertions.map((a) => checkAssertion(a, sample.prediction));
        if (judge) {
          sample.judge = await judge.judge({ input: p.content, output: sample.prediction, ...(p.references[0] !== undefined ? { reference: p.references[0] } : {}) }, call);
        }
        return sample;
      },
      {
        concurrency: spec.endpoint.max_concurrency,
        signal: options.signal,
        graceMs: options.graceMs,
        store,
        onError: spec.on_error,
        errorValue: (e) => ({ index: -1, input: "", references: [], prediction: "", metrics: {}, error: describeError(e) }),
        onProgress: options.onProgress,
      },
    );
    if (result.error !== undefined) throw result.error;
    if (!result.complete) return { status: "aborted", done: store.size, total: prepared.length };
  } finally {
    await client.close();
    await judgeClient?.close();
  }

  const samples = prepared.map((p) => {
    const s = store.get(String(p.index))!;
    // A skipped failure was recorded without its row's fields.
    if (s.error !== undefined && s.index === -1) return { ...s, index: p.index, input: p.input, references: p.references };
    // Scores are recomputed from the stored prediction, so restored samples are scored by this
    // run's metric list and references, not the one they were first scored with.
    const mc = s.metrics.multiple_choice;
    const rescored: EvalSample = { ...s, references: p.references, metrics: mc === undefined ? {} : { multiple_choice: mc } };
    scoreSample(rescored, metrics);
    if (spec.assertions) rescored.assertions = spec.assertions.map((a) => checkAssertion(a, rescored.prediction));
    return rescored;
  });
  const report = aggregate(samples, spec, usageTotals, store.restored);
  await mkdir(options.outDir, { recursive: true });
  await writeFile(join(options.outDir, "samples.jsonl"), toJsonl(samples));
  await writeFile(join(options.outDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  return { status: "complete", report, samples };
}

/** Summed log-likelihood of each option after `context`, from the server's echoed prompt logprobs. */
async function scoreChoices(client: OpenAIClient, context: string, choices: string[], call: { signal: AbortSignal; cacheSalt: string }): Promise<number[]> {
  return Promise.all(
    choices.map(async (choice, i) => {
      const prompt = `${context} ${choice}`;
      const r = await client.complete({ prompt, echo: true, logprobs: 0, max_tokens: 1, temperature: 0 }, { ...call, cacheSalt: `${call.cacheSalt}:choice${i}` });
      const lp = r.response.choices[0]?.logprobs;
      if (!lp) throw new EvalDatasetError(`${client.options.baseUrl} returned no logprobs for echo: multiple_choice needs a server with prompt logprobs`);
      let sum = 0;
      for (let k = 0; k < lp.tokens.length; k++) {
        const off = lp.text_offset[k]!;
        const end = off + lp.tokens[k]!.length;
        // Tokens of the option (one straddling the boundary included), not of the context or the continuation.
        if (end > context.length && off < prompt.length) sum += lp.token_logprobs[k] ?? 0;
      }
      return sum;
    }),
  );
}

function scoreSample(s: EvalSample, metrics: readonly EvalMetric[]): void {
  const refs = s.references;
  if (refs.length === 0) return;
  const pred = s.prediction;
  for (const m of metrics) {
    switch (m) {
      case "exact_match":
        s.metrics.exact_match = maxOverGroundTruths(squadExactMatch, pred, refs);
        break;
      case "f1":
        s.metrics.f1 = maxOverGroundTruths(squadF1, pred, refs);
        break;
      case "rouge1":
      case "rouge2":
      case "rougeL":
        s.metrics[m] = Math.max(...refs.map((r) => rouge(r, pred)[m].fmeasure));
        break;
      case "bleu":
        s.metrics.bleu = bleuFromStats(bleuSegmentStats(pred, refs, { effective_order: true }), { effective_order: true }).score;
        break;
      case "chrf":
        s.metrics.chrf = chrfFromStats(chrfSegmentStats(pred, refs));
        break;
      case "ter":
        s.metrics.ter = terScore(terSegmentStats(pred, refs));
        break;
      case "accuracy": {
        const p = pyStrip(pred).toLowerCase();
        s.metrics.accuracy = refs.some((r) => pyStrip(r).toLowerCase() === p) ? 1 : 0;
        break;
      }
      case "multiple_choice":
        break; // scored from log-likelihoods
      default: {
        const never: never = m;
        throw new Error(`unknown metric ${String(never)}`);
      }
    }
  }
}

function terScore([edits, refLen]: readonly number[]): number {
  if (refLen! > 0) return (100 * edits!) / refLen!;
  return edits! > 0 ? 100 : 0;
}

function aggregate(samples: EvalSample[], spec: EvaluateSpec, usage: { prompt_tokens: number; completion_tokens: number }, restored: number): EvalReport {
  const scored = samples.filter((s) => s.error === undefined);
  const out: Record<string, number> = {};
  const cis: Record<string, ConfidenceInterval> = {};
  const details: Record<string, { signature: string; formatted: string }> = {};
  const boot = { samples: spec.bootstrap_samples, seed: spec.bootstrap_seed };
  const preds = scored.map((s) => s.prediction);
  const maxRefs = Math.max(0, ...scored.map((s) => s.references.length));
  const streams = Array.from({ length: maxRefs }, (_, k) => scored.map((s) => s.references[k]));
  const ci = (name: string, c: ConfidenceInterval | undefined) => {
    if (c) cis[name] = c;
  };

  for (const m of spec.metrics) {
    if (scored.length === 0) continue;
    if (m === "bleu") {
      const r = corpusBleu(preds, streams);
      out.bleu = r.score;
      details.bleu = { signature: r.signature, formatted: r.formatted };
      const seg = scored.map((s) => bleuSegmentStats(s.prediction, s.references));
      ci("bleu", bootstrapCi(seg.length, (idx) => bleuFromStats(sumStats(Array.from(idx, (i) => seg[i]!))).score, boot));
    } else if (m === "chrf") {
      const r = corpusChrf(preds, streams);
      out.chrf = r.score;
      details.chrf = { signature: r.signature, formatted: r.formatted };
      const seg = scored.map((s) => chrfSegmentStats(s.prediction, s.references));
      ci("chrf", bootstrapCi(seg.length, (idx) => chrfFromStats(sumStats(Array.from(idx, (i) => seg[i]!))), boot));
    } else if (m === "ter") {
      const r = corpusTer(preds, streams);
      out.ter = r.score;
      details.ter = { signature: r.signature, formatted: r.formatted };
      const seg = scored.map((s) => terSegmentStats(s.prediction, s.references));
      ci("ter", bootstrapCi(seg.length, (idx) => terScore(sumStats(Array.from(idx, (i) => seg[i]!))), boot));
    } else {
      const values = scored.map((s) => s.metrics[m]).filter((v): v is number => v !== undefined);
      if (values.length === 0) continue;
      out[m] = values.reduce((a, b) => a + b, 0) / values.length;
      ci(m, bootstrapCi(values.length, (idx) => meanAt(values, idx), boot));
    }
  }

  const report: EvalReport = {
    metrics: out,
    confidence_intervals: cis,
    metric_details: details,
    counts: { samples: samples.length, scored: scored.length, errors: samples.length - scored.length, cached: samples.filter((s) => s.cached).length, restored },
    usage: {
      prompt_tokens: samples.reduce((a, s) => a + (s.usage?.prompt_tokens ?? 0), 0),
      completion_tokens: samples.reduce((a, s) => a + (s.usage?.completion_tokens ?? 0), 0),
    },
    endpoint: { base_url: spec.endpoint.base_url, deployment: spec.endpoint.deployment, model: spec.endpoint.model },
    sampling: { temperature: 0, ...(spec.sampling ?? {}) },
    spec: {
      input_field: spec.input_field,
      reference_field: spec.reference_field,
      metrics: spec.metrics,
      bootstrap_samples: spec.bootstrap_samples,
      bootstrap_seed: spec.bootstrap_seed,
    },
    created_at: new Date().toISOString(),
  };
  void usage;

  if (spec.metrics.includes("accuracy") && scored.length) {
    const label = (t: string) => pyStrip(t).toLowerCase();
    const withRef = scored.filter((s) => s.references.length > 0);
    if (withRef.length) {
      report.classification = classificationReport(
        withRef.map((s) => label(s.references[0]!)),
        withRef.map((s) => label(s.prediction)),
      );
      out.macro_f1 = report.classification.macro.f1;
    }
  }
  if (spec.assertions && scored.length) {
    const all = scored.map((s) => (s.assertions ?? []).every((a) => a.passed));
    report.assertions = {
      pass_rate: all.filter(Boolean).length / scored.length,
      by_assertion: spec.assertions.map((a, k) => ({ type: a.type, pass_rate: scored.filter((s) => s.assertions?.[k]?.passed).length / scored.length })),
    };
    out.assertion_pass_rate = report.assertions.pass_rate;
  }
  if (spec.judge && scored.length) {
    const verdicts = scored.map((s) => s.judge).filter((v): v is JudgeVerdict => v !== undefined);
    const ok = verdicts.filter((v) => v.status === "ok");
    const byDim: Record<string, number> = {};
    for (const d of spec.judge.rubric) byDim[d.name] = ok.length ? ok.reduce((a, v) => a + v.scores[d.name]!.score, 0) / ok.length : NaN;
    report.judge = {
      mean_score: ok.length ? ok.reduce((a, v) => a + v.weighted, 0) / ok.length : null,
      // A parse failure is not a pass, and it is counted on its own line — never as a 0 score.
      pass_rate: verdicts.filter((v) => v.passed).length / verdicts.length,
      parse_failures: verdicts.length - ok.length,
      judged: verdicts.length,
      by_dimension: byDim,
    };
    if (report.judge.mean_score !== null) out.judge_score = report.judge.mean_score;
    out.judge_pass_rate = report.judge.pass_rate;
  }
  return report;
}
