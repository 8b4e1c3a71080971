import { z } from "zod";
import { DataRef } from "../common.js";

/**
 * The `audit` job: stream a dataset through quality filters, dedup and PII redaction.
 * Outputs `kept`, `removed` and `report`.
 */
export const AuditSpec = z.strictObject({
  /** The dataset to audit (JSONL, gzip JSONL or Parquet). */
  dataset: DataRef,
  /** Step names in order (e.g. `gopher_quality`, `minhash`); omitted means the preset's steps. */
  steps: z.array(z.string().min(1)).optional(),
  /** A named pipeline preset. @default "fineweb" */
  preset: z.string().optional(),
  /** Per-step options keyed by step name. */
  options: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  text_field: z.string().default("text"),
  id_field: z.string().default("id"),
  on_error: z.enum(["fail", "skip"]).default("fail"),
  threads: z.number().int().min(1).max(256).optional(),
});
export type AuditSpec = z.infer<typeof AuditSpec>;
