import { z } from "zod";
import { DataRef } from "../common.js";

/** An OpenAI-compatible endpoint. Credentials are named, never inlined: resolved on the worker. */
export const Endpoint = z.strictObject({
  /** Base URL up to and including `/v1`, e.g. `http://127.0.0.1:8001/v1`. */
  base_url: z.string().url().optional(),
  /** A Forge deployment name, resolved through the gateway instead of `base_url`. */
  deployment: z.string().optional(),
  model: z.string().min(1),
  /** Name of an environment variable / secret on the worker holding the API key. */
  api_key_secret: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  max_concurrency: z.number().int().min(1).max(1024).default(8),
  requests_per_minute: z.number().positive().optional(),
  tokens_per_minute: z.number().positive().optional(),
  timeout_s: z.number().positive().default(120),
  max_retries: z.number().int().min(0).max(20).default(5),
}).refine((e) => e.base_url !== undefined || e.deployment !== undefined, {
  message: "an endpoint needs base_url or deployment",
  path: ["base_url"],
});
export type Endpoint = z.infer<typeof Endpoint>;

/** Sampling parameters passed through to the endpoint. */
export const Sampling = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  max_tokens: z.number().int().positive().optional(),
  seed: z.number().int().optional(),
  stop: z.array(z.string()).optional(),
});
export type Sampling = z.infer<typeof Sampling>;

/** An LLM-judge rubric dimension. */
export const RubricDimension = z.strictObject({
  name: z.string().min(1),
  description: z.string().min(1),
  weight: z.number().positive().default(1),
  /** Minimum score (1–10) to pass this dimension. */
  threshold: z.number().min(0).max(10).optional(),
});
export type RubricDimension = z.infer<typeof RubricDimension>;

/** How an LLM judge scores: rubric dimensions (1–10 each, weighted) and a pass threshold. */
export const JudgeConfig = z.strictObject({
  endpoint: Endpoint,
  rubric: z.array(RubricDimension).min(1),
  /** Weighted mean score (1–10) needed to pass. @default 7 */
  threshold: z.number().min(0).max(10).default(7),
  /** Extra instructions for the judge (what the records are, what matters). */
  instructions: z.string().optional(),
  /** Re-asks when a judge reply does not parse, before recording a parse failure. @default 2 */
  max_parse_retries: z.number().int().min(0).max(10).default(2),
  sampling: Sampling.optional(),
});
export type JudgeConfig = z.infer<typeof JudgeConfig>;

/**
 * Near-duplicate removal in `generate`: MinHash signatures of word n-gram shingles (the data engine's,
 * datatrove's definition), LSH over `num_buckets` bands of `hashes_per_bucket` rows; two outputs that share
 * a band are duplicates when the share of equal signature values (estimated Jaccard) reaches `threshold`.
 * The cluster's representative is kept. Outputs shorter than `n_grams` words are removed only when equal.
 */
export const GenerateDedup = z.strictObject({
  /** Estimated Jaccard similarity a band collision must reach (0: every collision, as datatrove). @default 0.8 */
  threshold: z.number().min(0).max(1).default(0.8),
  /** Words per shingle. @default 5 */
  n_grams: z.number().int().min(1).max(32).default(5),
  /** LSH bands. @default 14 */
  num_buckets: z.number().int().min(1).max(64).default(14),
  /** Signature values per band. @default 8 */
  hashes_per_bucket: z.number().int().min(1).max(64).default(8),
  /** Seed of the hash permutations. @default 1 */
  seed: z.number().int().min(0).default(1),
});
export type GenerateDedup = z.infer<typeof GenerateDedup>;

/** The `generate` job: synthetic data from templates and seed variables. */
export const GenerateSpec = z.strictObject({
  endpoint: Endpoint,
  /** Prompt template with `{{ variable }}` placeholders. */
  template: z.string().min(1),
  system: z.string().optional(),
  /** Lists to take the cartesian product of (topics, domains, styles). */
  variables: z.record(z.string(), z.array(z.string()).min(1)).optional(),
  /** A seed dataset whose rows supply template variables. */
  seed_dataset: DataRef.optional(),
  samples_per_prompt: z.number().int().min(1).max(1000).default(1),
  sampling: Sampling.optional(),
  /** JSON schema the reply must satisfy; invalid replies are repaired or retried. */
  output_schema: z.record(z.string(), z.unknown()).optional(),
  /** Near-duplicate removal of the outputs with the data engine's MinHash LSH (datatrove's defaults). */
  dedup: GenerateDedup.optional(),
  /** Repair turns for replies that fail `output_schema`. @default 2 */
  max_repairs: z.number().int().min(0).max(10).default(2),
});
export type GenerateSpec = z.infer<typeof GenerateSpec>;

/** The `distill` job: teacher answers for prompts, judged and filtered into chat SFT data. */
export const DistillSpec = z.strictObject({
  teacher: Endpoint,
  prompts: DataRef,
  prompt_field: z.string().default("prompt"),
  system: z.string().optional(),
  samples_per_prompt: z.number().int().min(1).max(64).default(1),
  sampling: Sampling.optional(),
  judge: JudgeConfig.optional(),
  /** Keep at most this many passing answers per prompt (best judged first). @default all */
  max_per_prompt: z.number().int().min(1).optional(),
});
export type DistillSpec = z.infer<typeof DistillSpec>;

/** Metrics the `evaluate` job computes. */
export const EvalMetric = z.enum([
  "exact_match",
  "f1",
  "bleu",
  "chrf",
  "ter",
  "rouge1",
  "rouge2",
  "rougeL",
  "accuracy",
  "multiple_choice",
]);
export type EvalMetric = z.infer<typeof EvalMetric>;

/** An assertion checked on each sample's output. */
export const EvalAssertion = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("equals"), value: z.string() }),
  z.strictObject({ type: z.literal("contains"), value: z.string() }),
  z.strictObject({ type: z.literal("regex"), pattern: z.string() }),
  z.strictObject({ type: z.literal("json_schema"), schema: z.record(z.string(), z.unknown()) }),
]);
export type EvalAssertion = z.infer<typeof EvalAssertion>;

/** The `evaluate` job: an eval dataset against an endpoint. */
export const EvaluateSpec = z.strictObject({
  endpoint: Endpoint,
  dataset: DataRef,
  input_field: z.string().default("prompt"),
  reference_field: z.string().default("answer"),
  metrics: z.array(EvalMetric).default(["exact_match", "f1"]),
  /** Field with an id per row, copied into samples. */
  id_field: z.string().default("id"),
  /** For `multiple_choice`: the field holding the options (the reference is the right option's text or index). */
  choices_field: z.string().default("choices"),
  assertions: z.array(EvalAssertion).optional(),
  judge: JudgeConfig.optional(),
  system: z.string().optional(),
  few_shot: z.array(z.strictObject({ input: z.string(), output: z.string() })).optional(),
  /**
   * For endpoints without a chat API: render the messages with this chat template and call
   * `/completions` instead of `/chat/completions`.
   */
  chat_template: z.enum(["chatml", "llama3", "plain"]).optional(),
  /** Template for the user message, with `{{ input }}` and row fields. @default "{{ input }}" */
  prompt_template: z.string().optional(),
  /** Sampling; temperature defaults to 0. */
  sampling: Sampling.optional(),
  bootstrap_samples: z.number().int().min(0).max(100_000).default(1000),
  /** Seed of the bootstrap resampling. @default 0 */
  bootstrap_seed: z.number().int().default(0),
  /** A sample whose request fails after retries: fail the job (completed samples are kept for the next attempt) or record the error and go on. */
  on_error: z.enum(["fail", "skip"]).default("fail"),
});
export type EvaluateSpec = z.infer<typeof EvaluateSpec>;

/**
 * The `audit` job in judge mode: an LLM scores each record on named rubric dimensions and records
 * at or above the threshold are kept. Outputs `kept.jsonl`, `removed.jsonl`, `judgments.jsonl`, `report.json`.
 */
export const JudgeAuditSpec = z.strictObject({
  dataset: DataRef,
  judge: JudgeConfig,
  text_field: z.string().default("text"),
  id_field: z.string().default("id"),
  /** A record whose judge reply never parses: drop it (default) or keep it. It is always counted. */
  on_parse_failure: z.enum(["remove", "keep"]).default("remove"),
});
export type JudgeAuditSpec = z.infer<typeof JudgeAuditSpec>;
