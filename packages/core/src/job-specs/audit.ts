import { z } from "zod";
import { DataRef } from "../common.js";

/**
 * One step of an audit pipeline: a step type name (`gopher_quality`, `gopher_repetition`, `c4`,
 * `fineweb`, `length`, `regex`, `pii`, `decontaminate`, `exact_dedup`, `bloom_dedup`, `minhash`)
 * or `{type, name?, options?}`. The data engine validates the type and its options.
 */
export const AuditStep = z.union([
  z.string().min(1),
  z.strictObject({
    type: z.string().min(1),
    /** Name in the report and in `removed.jsonl`'s `filter`. @default the type */
    name: z.string().min(1).optional(),
    options: z.record(z.string(), z.unknown()).optional(),
  }),
]);
export type AuditStep = z.infer<typeof AuditStep>;

/**
 * The `audit` job: stream a dataset through quality filters, dedup and PII redaction.
 * Outputs `kept.jsonl` (dataset), `removed.jsonl` (dataset: each record with `filter` and
 * `reason`) and `report.json` (report).
 *
 * @example
 * { dataset: "sha256:…", preset: "fineweb", steps: ["gopher_quality", "minhash", "pii"] }
 */
export const AuditSpec = z.strictObject({
  /** The dataset to audit (JSONL, gzip JSONL or Parquet). */
  dataset: DataRef,
  /** Steps in order; omitted means the preset's. */
  steps: z.array(AuditStep).min(1).optional(),
  /**
   * A named pipeline: `fineweb` (FineWeb's filter order and settings, then MinHash) or
   * `datatrove` (same steps, datatrove's default settings). @default "fineweb"
   */
  preset: z.enum(["fineweb", "datatrove"]).optional(),
  /** Per-step options keyed by step name (also the seam for the LLM judge: `options.llm_judge`). */
  options: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  text_field: z.string().default("text"),
  id_field: z.string().default("id"),
  on_error: z.enum(["fail", "skip"]).default("fail"),
  threads: z.number().int().min(1).max(256).optional(),
});
export type AuditSpec = z.infer<typeof AuditSpec>;
