import { AuditSpec } from "@nexa/core";
import { type AuditReport, PipelineConfig, RecordError, runAudit } from "@nexa/data";
import { JobFailure, type Handler } from "../handler.js";
import { judgeHandler } from "./judge.js";

/**
 * The `audit` job: materialises the dataset artifact, streams it through the data engine's
 * pipeline (the spec's steps, or its preset's) and leaves `kept.jsonl` and `removed.jsonl`
 * (datasets) and `report.json` (report) in the outputs folder. Progress goes to the job log,
 * per-step figures to its metrics. Abort (cancel, preemption) stops it promptly and leaves no
 * partial outputs. An `llm_judge` step (or `options.llm_judge`) hands the job to the judge.
 *
 * @example
 * handlers.audit = auditHandler;
 */
export const auditHandler: Handler = async (ctx) => {
  const parsed = AuditSpec.safeParse(ctx.job.spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new JobFailure("spec_invalid", `audit spec: ${issue.path.join(".") || "(root)"}: ${issue.message}`, { retryable: false, details: parsed.error.issues });
  }
  const spec = parsed.data;
  const stepNames = (spec.steps ?? []).map((s) => (typeof s === "string" ? s : s.type));
  if (stepNames.includes("llm_judge") || spec.options?.llm_judge !== undefined) return judgeHandler(ctx);

  let config: PipelineConfig;
  try {
    config = PipelineConfig.parse({
      steps: spec.steps,
      preset: spec.preset,
      options: spec.options,
      text_field: spec.text_field,
      id_field: spec.id_field,
      on_error: spec.on_error,
      threads: spec.threads,
    });
  } catch (e) {
    throw new JobFailure("spec_invalid", `audit spec: ${(e as Error).message}`, { retryable: false, cause: e });
  }

  const input = await ctx.fetchInput(spec.dataset, "dataset");
  ctx.log(`audit: ${input} with ${config.steps ? `${config.steps.length} steps` : `preset ${config.preset ?? "fineweb"}`}, ${config.threads ?? 1} thread(s)`);
  let report: AuditReport;
  let lastLog = 0;
  try {
    report = await runAudit({
      input,
      outDir: ctx.outputsDir,
      config,
      signal: ctx.signal,
      log: (line) => ctx.log(line),
      onProgress: (p) => {
        ctx.metric("docs_read", p.docs, p.docs);
        const now = Date.now();
        if (now - lastLog >= 2000) {
          lastLog = now;
          ctx.log(`audit: pass ${p.pass}/${p.passes}, ${p.docs} documents`);
        }
      },
    });
  } catch (e) {
    if (ctx.signal.aborted) {
      throw new JobFailure("canceled", `audit stopped: ${String((ctx.signal.reason as Error | undefined)?.message ?? ctx.signal.reason ?? "aborted")}`, { kind: "canceled", cause: e });
    }
    if (e instanceof RecordError) throw new JobFailure("input_invalid", e.message, { retryable: false, cause: e, details: { kind: e.kind, ...e.location } });
    if (e instanceof Error && /^pipeline step|^--steps|regex rule/.test(e.message)) throw new JobFailure("spec_invalid", e.message, { retryable: false, cause: e });
    throw e;
  }
  ctx.setOutputKind("kept.jsonl", "dataset");
  ctx.setOutputKind("removed.jsonl", "dataset");
  ctx.setOutputKind("report.json", "report");
  report.steps.forEach((s, i) => {
    ctx.metric(`step.${s.name}.docs_out`, i, s.docs_out);
    ctx.metric(`step.${s.name}.mb_per_s`, i, s.mb_per_s);
  });
  ctx.metric("kept", 0, report.kept);
  ctx.metric("removed", 0, report.removed);
  ctx.metric("mb_per_s", 0, report.mb_per_s);
  ctx.annotate({ audit: { docs_in: report.docs_in, kept: report.kept, removed: report.removed, skipped: report.skipped } });
  ctx.log(`audit: ${report.docs_in} documents, ${report.kept} kept, ${report.removed} removed in ${(report.wall_ms / 1000).toFixed(1)} s`);
};
