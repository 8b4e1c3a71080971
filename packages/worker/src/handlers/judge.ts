import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { JudgeAuditSpec } from "@nexa/core";
import { ProgressStore, RubricJudge, createEndpointClient, processItems, readJsonl, toJsonl, type JudgeVerdict } from "@nexa/llm";
import { JobFailure, type Handler } from "../handler.js";
import { llmEnvironment, parseSpec, stoppedFailure, toJobFailure } from "./evaluate.js";

/**
 * Reads the judge-mode spec: a {@link JudgeAuditSpec} itself, or an `audit` spec whose `options.llm_judge`
 * holds `{judge, text_field?, id_field?, on_parse_failure?}` (so the audit handler can hand judge mode here).
 */
function judgeSpecOf(spec: Record<string, unknown>): unknown {
  const options = spec.options as Record<string, unknown> | undefined;
  const llm = options?.llm_judge as Record<string, unknown> | undefined;
  if (llm && spec.judge === undefined) {
    return { dataset: spec.dataset, text_field: spec.text_field, id_field: spec.id_field, ...llm };
  }
  return spec;
}

/**
 * `audit` in judge mode: an LLM scores each record on named rubric dimensions (1–10, weighted) and
 * the records whose verdict passes the thresholds are kept. Writes `kept.jsonl`, `removed.jsonl`,
 * `judgments.jsonl` (one verdict per record, with reasons) and `report.json`. A judge reply that
 * never parses is an explicit `parse_failure` verdict, counted in the report, never a score of 0.
 *
 * @example
 * if (spec.steps?.includes("llm_judge")) return judgeHandler(ctx);
 */
export const judgeHandler: Handler = async (ctx) => {
  const spec = parseSpec(JudgeAuditSpec, ctx, judgeSpecOf(ctx.job.spec));
  const rows = await readJsonl(await ctx.fetchInput(spec.dataset, "dataset.jsonl")).catch((e: unknown) => {
    throw toJobFailure(e);
  });
  rows.forEach((r, i) => {
    if (typeof r[spec.text_field] !== "string") {
      throw new JobFailure("input_invalid", `dataset row ${i + 1} has no string field ${JSON.stringify(spec.text_field)}`, { retryable: false });
    }
  });
  ctx.annotate({ judge: { model: spec.judge.endpoint.model, base_url: spec.judge.endpoint.base_url ?? null, rubric: spec.judge.rubric, threshold: spec.judge.threshold } });
  let client;
  try {
    client = createEndpointClient(spec.judge.endpoint, llmEnvironment(ctx));
  } catch (e) {
    throw toJobFailure(e);
  }
  const judge = new RubricJudge({
    client,
    rubric: spec.judge.rubric,
    threshold: spec.judge.threshold,
    maxParseRetries: spec.judge.max_parse_retries,
    ...(spec.judge.instructions ? { instructions: spec.judge.instructions } : {}),
    ...(spec.judge.sampling ? { sampling: spec.judge.sampling } : {}),
  });
  const store = new ProgressStore<JudgeVerdict>(ctx.checkpointDir);
  await store.load();
  const items = rows.map((row, i) => ({ key: String(i), item: row }));
  try {
    const result = await processItems(items, (row, signal, key) => judge.judge({ output: row[spec.text_field] as string }, { signal, cacheSalt: `judge:${key}` }), {
      concurrency: spec.judge.endpoint.max_concurrency,
      signal: ctx.signal,
      graceMs: Math.max(1000, ctx.graceMs * 0.8),
      store,
    });
    if (result.error !== undefined) throw toJobFailure(result.error);
    if (!result.complete) throw stoppedFailure(ctx, store.size, items.length);
  } finally {
    await client.close();
  }
  const kept: unknown[] = [];
  const removed: unknown[] = [];
  const judgments: unknown[] = [];
  let parseFailures = 0;
  const dimSums: Record<string, number> = {};
  let ok = 0;
  rows.forEach((row, i) => {
    const v = store.get(String(i))!;
    judgments.push({ index: i, id: row[spec.id_field] ?? null, verdict: v });
    const keep = v.status === "parse_failure" ? spec.on_parse_failure === "keep" : v.passed;
    if (v.status === "parse_failure") parseFailures++;
    else {
      ok++;
      for (const [d, s] of Object.entries(v.scores)) dimSums[d] = (dimSums[d] ?? 0) + s.score;
    }
    (keep ? kept : removed).push(row);
  });
  await mkdir(ctx.outputsDir, { recursive: true });
  await writeFile(join(ctx.outputsDir, "kept.jsonl"), toJsonl(kept));
  await writeFile(join(ctx.outputsDir, "removed.jsonl"), toJsonl(removed));
  await writeFile(join(ctx.outputsDir, "judgments.jsonl"), toJsonl(judgments));
  const report = {
    records: rows.length,
    kept: kept.length,
    removed: removed.length,
    parse_failures: parseFailures,
    mean_by_dimension: Object.fromEntries(Object.entries(dimSums).map(([d, s]) => [d, s / ok])),
    threshold: spec.judge.threshold,
  };
  await writeFile(join(ctx.outputsDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  ctx.setOutputKind("kept.jsonl", "dataset");
  ctx.setOutputKind("removed.jsonl", "dataset");
  ctx.setOutputKind("judgments.jsonl", "report");
  ctx.setOutputKind("report.json", "report");
  ctx.log(`judged ${rows.length} records: kept ${kept.length}, removed ${removed.length}, ${parseFailures} parse failures`, "system");
};
