import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GenerateSpec } from "@nexa/core";
import {
  ProgressStore,
  StructuredOutputError,
  buildChatMessages,
  cartesianProduct,
  chatJson,
  createEndpointClient,
  describeError,
  processItems,
  readJsonl,
  renderTemplate,
  toJsonl,
} from "@nexa/llm";
import type { Handler } from "../handler.js";
import { llmEnvironment, parseSpec, stoppedFailure, toJobFailure } from "./evaluate.js";
import { findNearDuplicates } from "./near-duplicates.js";

/** One generated sample as checkpointed (before dedup). */
interface GeneratedItem {
  prompt_index: number;
  sample: number;
  variables: Record<string, unknown>;
  prompt: string;
  text: string;
  data?: unknown;
  /** Set when the reply never satisfied `output_schema`: dropped, counted. */
  invalid?: string;
}

/**
 * The `generate` job: fills the prompt template with variables from a seed dataset and/or the
 * cartesian product of the listed values, asks the endpoint for `samples_per_prompt` replies each,
 * validates them against `output_schema` (repairing or retrying invalid ones), removes
 * near-duplicates (the data engine's MinHash LSH, `dedup`), and writes `dataset.jsonl` and
 * `report.json`. Every finished sample is checkpointed, so an attempt after preemption continues
 * where the last stopped and pays for no completion twice.
 *
 * @example
 * registry.generate = generateHandler;
 */
export const generateHandler: Handler = async (ctx) => {
  const spec = parseSpec(GenerateSpec, ctx);
  let seedRows: Record<string, unknown>[] = [{}];
  if (spec.seed_dataset) seedRows = await readJsonl(await ctx.fetchInput(spec.seed_dataset, "seed.jsonl")).catch((e: unknown) => {
    throw toJobFailure(e);
  });
  const combos = spec.variables ? cartesianProduct(spec.variables) : [{}];
  const prompts: { variables: Record<string, unknown>; prompt: string }[] = [];
  for (const row of seedRows) {
    for (const combo of combos) {
      const variables = { ...row, ...combo };
      try {
        prompts.push({ variables, prompt: renderTemplate(spec.template, variables) });
      } catch (e) {
        throw toJobFailure(e);
      }
    }
  }
  const items = prompts.flatMap((p, i) => Array.from({ length: spec.samples_per_prompt }, (_, s) => ({ key: `${i}:${s}`, item: { ...p, prompt_index: i, sample: s } })));
  ctx.annotate({ endpoint: { base_url: spec.endpoint.base_url ?? null, model: spec.endpoint.model }, sampling: spec.sampling ?? {}, prompts: prompts.length });

  const store = new ProgressStore<GeneratedItem>(ctx.checkpointDir);
  await store.load();
  if (store.restored) ctx.log(`resuming: ${store.restored} of ${items.length} samples already generated`, "system");
  const env = llmEnvironment(ctx);
  let client;
  try {
    client = createEndpointClient(spec.endpoint, env);
  } catch (e) {
    throw toJobFailure(e);
  }
  try {
    const result = await processItems(
      items,
      async (it, signal, key): Promise<GeneratedItem> => {
        const sampling = { ...(spec.sampling ?? {}) };
        // Distinct seeds per sample, so n samples of one prompt are n draws, not one reply n times.
        if (sampling.seed !== undefined) sampling.seed += it.sample;
        const request = { ...sampling, messages: buildChatMessages({ system: spec.system, user: it.prompt }) };
        const base = { prompt_index: it.prompt_index, sample: it.sample, variables: it.variables, prompt: it.prompt };
        if (spec.output_schema) {
          try {
            const r = await chatJson(client, request, { schema: spec.output_schema, maxRepairs: spec.max_repairs, signal, cacheSalt: `gen:${key}` });
            return { ...base, text: r.text, data: r.value };
          } catch (e) {
            if (e instanceof StructuredOutputError) return { ...base, text: e.reply, invalid: describeError(e) };
            throw e;
          }
        }
        const r = await client.chat(request, { signal, cacheSalt: `gen:${key}` });
        return { ...base, text: r.text };
      },
      {
        concurrency: spec.endpoint.max_concurrency,
        signal: ctx.signal,
        graceMs: Math.max(1000, ctx.graceMs * 0.8),
        store,
        onProgress: (done) => {
          if (done % 50 === 0) ctx.metric("samples_done", done, done);
        },
      },
    );
    if (result.error !== undefined) throw toJobFailure(result.error);
    if (!result.complete) throw stoppedFailure(ctx, store.size, items.length);
  } finally {
    await client.close();
  }

  const all = items.map((it) => store.get(it.key)!);
  const valid = all.filter((g) => g.invalid === undefined);
  const invalid = all.length - valid.length;
  const near = spec.dedup ? await findNearDuplicates(valid.map((g) => g.text), spec.dedup) : undefined;
  const duplicates = near?.removedBy.size ?? 0;
  const rows: Record<string, unknown>[] = [];
  for (const [i, g] of valid.entries()) {
    if (near?.removedBy.has(i)) continue;
    rows.push({
      id: `${ctx.job.id}-${g.prompt_index}-${g.sample}`,
      text: g.text,
      ...(g.data !== undefined ? { data: g.data } : {}),
      prompt: g.prompt,
      variables: g.variables,
      sample: g.sample,
      model: spec.endpoint.model,
    });
  }
  await mkdir(ctx.outputsDir, { recursive: true });
  await writeFile(join(ctx.outputsDir, "dataset.jsonl"), toJsonl(rows));
  const report = {
    prompts: prompts.length,
    requested: items.length,
    invalid,
    duplicates_removed: duplicates,
    ...(near ? { dedup: { method: "minhash_lsh", ...spec.dedup, below_threshold: near.rejected } } : {}),
    written: rows.length,
    restored: store.restored,
  };
  await writeFile(join(ctx.outputsDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  ctx.setOutputKind("dataset.jsonl", "dataset");
  ctx.setOutputKind("report.json", "report");
  ctx.log(`generated ${rows.length} samples (${invalid} invalid, ${duplicates} near-duplicates removed)`, "system");
};
