import { z } from "zod";
import type { Usage } from "./job.js";

/**
 * Prices used to turn metered usage into cost. Loaded from a config file on the server
 * (`NEXA_HOME/prices.json` or `--prices`).
 */
export const PriceTable = z.strictObject({
  currency: z.literal("USD").default("USD"),
  /** Per CPU-hour (CPU-seconds / 3600). @default 0.04 */
  cpu_hour: z.number().nonnegative().default(0.04),
  /** Per GPU-hour by GPU type; matched case-insensitively as a substring of the GPU name. */
  gpu_hour: z.record(z.string(), z.number().nonnegative()).default({ H100: 2.5, A100: 1.6, L4: 0.7, T4: 0.35 }),
  /** Per GPU-hour for a GPU type not in `gpu_hour`. @default 1.0 */
  gpu_hour_default: z.number().nonnegative().default(1.0),
  /** Per 1,000 tokens sent to / received from model endpoints. */
  tokens_in_per_1k: z.number().nonnegative().default(0),
  tokens_out_per_1k: z.number().nonnegative().default(0),
});
export type PriceTable = z.infer<typeof PriceTable>;

/** The built-in price table. */
export const DEFAULT_PRICES: PriceTable = PriceTable.parse({});

/** Price per hour of one GPU of `gpuName`. */
export function gpuHourPrice(prices: PriceTable, gpuName: string): number {
  const lower = gpuName.toLowerCase();
  for (const [type, price] of Object.entries(prices.gpu_hour)) {
    if (lower.includes(type.toLowerCase())) return price;
  }
  return prices.gpu_hour_default;
}

/**
 * Cost of metered usage under a price table.
 *
 * @example
 * costOf({ wall_s: 3600, cpu_s: 7200, gpu_s: { "NVIDIA H100": 3600 }, tokens_in: 0, tokens_out: 0, cost_usd: 0 }, DEFAULT_PRICES)
 * // → 0.08 + 2.5 = 2.58
 */
export function costOf(usage: Usage, prices: PriceTable): number {
  let cost = (usage.cpu_s / 3600) * prices.cpu_hour;
  for (const [gpu, seconds] of Object.entries(usage.gpu_s)) cost += (seconds / 3600) * gpuHourPrice(prices, gpu);
  cost += (usage.tokens_in / 1000) * prices.tokens_in_per_1k + (usage.tokens_out / 1000) * prices.tokens_out_per_1k;
  return Math.round(cost * 1e9) / 1e9;
}

/** Adds two usage records (cost included as given). */
export function addUsage(a: Usage, b: Partial<Usage>): Usage {
  const gpu_s = { ...a.gpu_s };
  for (const [k, v] of Object.entries(b.gpu_s ?? {})) gpu_s[k] = (gpu_s[k] ?? 0) + v;
  return {
    wall_s: a.wall_s + (b.wall_s ?? 0),
    cpu_s: a.cpu_s + (b.cpu_s ?? 0),
    gpu_s,
    tokens_in: a.tokens_in + (b.tokens_in ?? 0),
    tokens_out: a.tokens_out + (b.tokens_out ?? 0),
    cost_usd: a.cost_usd + (b.cost_usd ?? 0),
  };
}

/** An empty usage record. */
export function zeroUsage(): Usage {
  return { wall_s: 0, cpu_s: 0, gpu_s: {}, tokens_in: 0, tokens_out: 0, cost_usd: 0 };
}

/** `GET /v1/usage` query. */
export const UsageQuery = z.object({
  group_by: z.enum(["day", "type", "project", "job"]).default("day"),
  since: z.string().optional(),
  until: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});
export type UsageQuery = z.infer<typeof UsageQuery>;

/** One row of a usage report. */
export const UsageRow = z.object({
  key: z.string(),
  jobs: z.number().int(),
  attempts: z.number().int(),
  wall_s: z.number(),
  cpu_s: z.number(),
  gpu_s: z.number(),
  tokens_in: z.number().int(),
  tokens_out: z.number().int(),
  cost_usd: z.number(),
});
export type UsageRow = z.infer<typeof UsageRow>;

/** `GET /v1/usage` answer. */
export const UsageReport = z.object({
  group_by: z.enum(["day", "type", "project", "job"]),
  currency: z.string(),
  rows: z.array(UsageRow),
  total: UsageRow,
});
export type UsageReport = z.infer<typeof UsageReport>;
