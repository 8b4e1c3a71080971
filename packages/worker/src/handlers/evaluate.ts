import { join } from "node:path";
import { EvaluateSpec } from "@nexa/core";
import {
  EvalDatasetError,
  JsonlError,
  LlmError,
  TemplateError,
  runEvaluation,
  type EndpointEnvironment,
  type UsageRecord,
} from "@nexa/llm";
import { JobFailure, type Handler, type HandlerContext } from "../handler.js";

/**
 * How LLM handlers reach endpoints from this worker: secrets through the context (never logged),
 * deployments through the control plane's gateway, replies cached in the attempt's workdir, and
 * every token reported as the attempt's usage.
 */
export function llmEnvironment(ctx: HandlerContext): EndpointEnvironment & { cacheDir: string } {
  const api = ctx.api as { url?: string; apiKey?: string | undefined };
  return {
    secret: (name) => ctx.secret(name),
    ...(api.url ? { gatewayUrl: `${api.url.replace(/\/+$/, "")}/v1/gateway` } : {}),
    ...(api.apiKey ? { gatewayKey: api.apiKey } : {}),
    cacheDir: join(ctx.workdir, "request-cache"),
    onUsage: (u: UsageRecord) => ctx.addUsage({ tokens_in: u.prompt_tokens, tokens_out: u.completion_tokens }),
  };
}

/** Parses a job spec with its core schema; a bad spec is a non-retryable `invalid_spec` failure. */
export function parseSpec<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } },
  ctx: HandlerContext,
  spec: unknown = ctx.job.spec,
): T {
  const r = schema.safeParse(spec);
  if (!r.success) {
    const details = r.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
    throw new JobFailure("invalid_spec", `invalid ${ctx.job.type} spec: ${details.map((d) => `${d.path}: ${d.message}`).join("; ")}`, {
      retryable: false,
      details,
    });
  }
  return r.data;
}

/** The failure for an attempt stopped by its signal after checkpointing its progress. */
export function stoppedFailure(ctx: HandlerContext, done: number, total: number): JobFailure {
  const reason = typeof ctx.signal.reason === "string" ? ctx.signal.reason : "preempted";
  const kind = reason === "canceled" ? "canceled" : "preempted";
  return new JobFailure(kind, `stopped (${reason}) after ${done} of ${total} items; progress is checkpointed`, { kind, retryable: kind !== "canceled" });
}

/** Maps errors of the LLM library to job failures: request failures keep their retryability, data errors do not retry. */
export function toJobFailure(err: unknown): unknown {
  if (err instanceof JobFailure) return err;
  if (err instanceof LlmError) {
    return new JobFailure("llm_request_failed", err.message, {
      retryable: err.retryable,
      cause: err,
      details: { endpoint: err.endpoint, model: err.model, status: err.status, attempts: err.attempts },
    });
  }
  if (err instanceof EvalDatasetError || err instanceof JsonlError || err instanceof TemplateError) {
    return new JobFailure("input_invalid", err.message, { retryable: false, cause: err });
  }
  return err;
}

/**
 * The `evaluate` job: runs an eval dataset against an endpoint and writes `samples.jsonl`
 * (per-sample predictions and scores) and `report.json` (corpus BLEU/chrF/TER on the 0–100 scale,
 * EM/F1/ROUGE/accuracy as 0–1 means, bootstrap intervals, assertions, judge). Progress is
 * checkpointed under the checkpoint folder, so a resumed attempt asks only for unfinished samples.
 *
 * @example
 * registry.evaluate = evaluateHandler;
 */
export const evaluateHandler: Handler = async (ctx) => {
  const spec = parseSpec(EvaluateSpec, ctx);
  const datasetPath = await ctx.fetchInput(spec.dataset, "dataset.jsonl");
  ctx.annotate({
    endpoint: { base_url: spec.endpoint.base_url ?? null, deployment: spec.endpoint.deployment ?? null, model: spec.endpoint.model },
    sampling: { temperature: 0, ...(spec.sampling ?? {}) },
    metrics: spec.metrics,
  });
  let outcome;
  try {
    outcome = await runEvaluation({
      spec,
      datasetPath,
      outDir: ctx.outputsDir,
      checkpointDir: ctx.checkpointDir,
      ...llmEnvironment(ctx),
      signal: ctx.signal,
      graceMs: Math.max(1000, ctx.graceMs * 0.8),
      log: (line) => ctx.log(line, "system"),
      onProgress: (done) => {
        if (done % 50 === 0) ctx.metric("samples_done", done, done);
      },
    });
  } catch (e) {
    throw toJobFailure(e);
  }
  if (outcome.status === "aborted") throw stoppedFailure(ctx, outcome.done, outcome.total);
  ctx.setOutputKind("report.json", "report");
  ctx.setOutputKind("samples.jsonl", "dataset");
  for (const [name, value] of Object.entries(outcome.report.metrics)) ctx.metric(`eval/${name}`, 0, value);
  ctx.log(`evaluated ${outcome.report.counts.samples} samples: ${JSON.stringify(outcome.report.metrics)}`, "system");
};
