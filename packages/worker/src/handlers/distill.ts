import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DistillSpec } from "@nexa/core";
import {
  ProgressStore,
  RubricJudge,
  buildChatMessages,
  createEndpointClient,
  processItems,
  readJsonl,
  toJsonl,
  type JudgeVerdict,
  type OpenAIClient,
} from "@nexa/llm";
import { JobFailure, type Handler } from "../handler.js";
import { llmEnvironment, parseSpec, stoppedFailure, toJobFailure } from "./evaluate.js";

/** One teacher answer as checkpointed. */
interface DistilledItem {
  prompt_index: number;
  sample: number;
  prompt: string;
  answer: string;
  finish_reason: string | null;
  verdict?: JudgeVerdict;
}

/**
 * The `distill` job: asks a teacher endpoint for answers to a prompt dataset (several samples per
 * prompt optional), has a judge score each on a rubric, keeps the answers that pass (best first,
 * at most `max_per_prompt`), and writes them as chat-format SFT data (`sft.jsonl`, one
 * `{"messages": [...]}` per line) with `judgments.jsonl` and `report.json`. The teacher's identity
 * and parameters go into the run manifest. A judge reply that never parses is recorded as a parse
 * failure and its answer is not kept.
 *
 * @example
 * registry.distill = distillHandler;
 */
export const distillHandler: Handler = async (ctx) => {
  const spec = parseSpec(DistillSpec, ctx);
  const rows = await readJsonl(await ctx.fetchInput(spec.prompts, "prompts.jsonl")).catch((e: unknown) => {
    throw toJobFailure(e);
  });
  const prompts = rows.map((row, i) => {
    const p = row[spec.prompt_field];
    if (typeof p !== "string" || p === "") {
      throw new JobFailure("input_invalid", `prompts row ${i + 1} has no string field ${JSON.stringify(spec.prompt_field)}`, { retryable: false });
    }
    return p;
  });
  ctx.annotate({
    teacher: {
      base_url: spec.teacher.base_url ?? null,
      deployment: spec.teacher.deployment ?? null,
      model: spec.teacher.model,
      sampling: spec.sampling ?? {},
      samples_per_prompt: spec.samples_per_prompt,
      system: spec.system ?? null,
    },
    judge: spec.judge ? { model: spec.judge.endpoint.model, base_url: spec.judge.endpoint.base_url ?? null, threshold: spec.judge.threshold, rubric: spec.judge.rubric } : null,
  });

  const env = llmEnvironment(ctx);
  let teacher: OpenAIClient;
  let judgeClient: OpenAIClient | undefined;
  try {
    teacher = createEndpointClient(spec.teacher, env);
    judgeClient = spec.judge ? createEndpointClient(spec.judge.endpoint, env) : undefined;
  } catch (e) {
    throw toJobFailure(e);
  }
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

  const items = prompts.flatMap((prompt, i) => Array.from({ length: spec.samples_per_prompt }, (_, s) => ({ key: `${i}:${s}`, item: { prompt, prompt_index: i, sample: s } })));
  const store = new ProgressStore<DistilledItem>(ctx.checkpointDir);
  await store.load();
  if (store.restored) ctx.log(`resuming: ${store.restored} of ${items.length} answers already distilled`, "system");
  try {
    const result = await processItems(
      items,
      async (it, signal, key): Promise<DistilledItem> => {
        const sampling = { ...(spec.sampling ?? {}) };
        if (sampling.seed !== undefined) sampling.seed += it.sample;
        const r = await teacher.chat({ ...sampling, messages: buildChatMessages({ system: spec.system, user: it.prompt }) }, { signal, cacheSalt: `distill:${key}` });
        const out: DistilledItem = { prompt_index: it.prompt_index, sample: it.sample, prompt: it.prompt, answer: r.text, finish_reason: r.finishReason };
        if (judge) out.verdict = await judge.judge({ input: it.prompt, output: r.text }, { signal, cacheSalt: `distill-judge:${key}` });
        return out;
      },
      {
        concurrency: spec.teacher.max_concurrency,
        signal: ctx.signal,
        graceMs: Math.max(1000, ctx.graceMs * 0.8),
        store,
        onProgress: (done) => {
          if (done % 50 === 0) ctx.metric("answers_done", done, done);
        },
      },
    );
    if (result.error !== undefined) throw toJobFailure(result.error);
    if (!result.complete) throw stoppedFailure(ctx, store.size, items.length);
  } finally {
    await teacher.close();
    await judgeClient?.close();
  }

  const byPrompt = new Map<number, DistilledItem[]>();
  for (const it of items) {
    const d = store.get(it.key)!;
    const list = byPrompt.get(d.prompt_index) ?? [];
    list.push(d);
    byPrompt.set(d.prompt_index, list);
  }
  const sft: unknown[] = [];
  const judgments: unknown[] = [];
  let parseFailures = 0;
  let rejected = 0;
  let truncated = 0;
  for (const [, answers] of [...byPrompt].sort((a, b) => a[0] - b[0])) {
    const passing: DistilledItem[] = [];
    for (const a of answers) {
      if (a.verdict) judgments.push({ prompt_index: a.prompt_index, sample: a.sample, verdict: a.verdict });
      if (a.verdict?.status === "parse_failure") parseFailures++;
      if (a.finish_reason === "length") truncated++;
      if (a.answer.trim() === "" || (a.verdict && !a.verdict.passed)) {
        rejected++;
        continue;
      }
      passing.push(a);
    }
    passing.sort((x, y) => weighted(y) - weighted(x));
    for (const a of passing.slice(0, spec.max_per_prompt ?? passing.length)) {
      const messages = buildChatMessages({ system: spec.system, user: a.prompt });
      messages.push({ role: "assistant", content: a.answer });
      sft.push({ messages, metadata: { prompt_index: a.prompt_index, sample: a.sample, teacher: spec.teacher.model, ...(a.verdict?.status === "ok" ? { judge_score: a.verdict.weighted } : {}) } });
    }
  }
  await mkdir(ctx.outputsDir, { recursive: true });
  await writeFile(join(ctx.outputsDir, "sft.jsonl"), toJsonl(sft));
  if (judge) await writeFile(join(ctx.outputsDir, "judgments.jsonl"), toJsonl(judgments));
  const report = { prompts: prompts.length, answers: items.length, kept: sft.length, rejected, judge_parse_failures: parseFailures, truncated, restored: store.restored };
  await writeFile(join(ctx.outputsDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  ctx.setOutputKind("sft.jsonl", "dataset");
  ctx.setOutputKind("report.json", "report");
  if (judge) ctx.setOutputKind("judgments.jsonl", "report");
  ctx.log(`distilled ${sft.length} SFT examples from ${items.length} teacher answers (${rejected} rejected, ${parseFailures} judge parse failures)`, "system");
};

function weighted(a: DistilledItem): number {
  return a.verdict?.status === "ok" ? a.verdict.weighted : 0;
}
