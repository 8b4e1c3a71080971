import { z } from "zod";

/** One GPU of a worker. */
export const Gpu = z.object({
  name: z.string(),
  memory_gb: z.number().nonnegative(),
  /** Driver version reported by nvidia-smi, when known. */
  driver: z.string().optional(),
  index: z.number().int().nonnegative().optional(),
});
export type Gpu = z.infer<typeof Gpu>;

/** What a worker offers. */
export const Capabilities = z.object({
  cpus: z.number().positive(),
  memory_gb: z.number().nonnegative(),
  gpus: z.array(Gpu).default([]),
  labels: z.record(z.string(), z.string()).default({}),
});
export type Capabilities = z.infer<typeof Capabilities>;

/** What a job needs from the worker that runs it. */
export const Requirements = z.strictObject({
  gpus: z.number().int().nonnegative().optional(),
  /** Case-insensitive substring of the GPU name, e.g. `A100` or `H100`. */
  gpu_type: z.string().min(1).optional(),
  gpu_memory_gb: z.number().positive().optional(),
  cpus: z.number().positive().optional(),
  memory_gb: z.number().positive().optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
export type Requirements = z.infer<typeof Requirements>;

/** Result of {@link matchRequirements}: why a worker cannot run a job, when it cannot. */
export type Match = { ok: true } | { ok: false; reason: string };

/**
 * Whether a worker with `caps` (and `accepts`) can run a job of `type` needing `req`.
 *
 * @example
 * matchRequirements({ cpus: 8, memory_gb: 32, gpus: [], labels: {} }, [], "train", { gpus: 1 })
 * // → { ok: false, reason: "needs 1 GPU(s), worker has 0" }
 */
export function matchRequirements(
  caps: Capabilities,
  accepts: readonly string[],
  type: string,
  req: Requirements,
): Match {
  if (accepts.length > 0 && !accepts.includes(type)) return { ok: false, reason: `does not accept ${type} jobs` };
  if (req.cpus !== undefined && caps.cpus < req.cpus) return { ok: false, reason: `needs ${req.cpus} CPUs, worker has ${caps.cpus}` };
  if (req.memory_gb !== undefined && caps.memory_gb < req.memory_gb)
    return { ok: false, reason: `needs ${req.memory_gb} GB memory, worker has ${caps.memory_gb}` };
  let gpus = caps.gpus;
  if (req.gpu_type !== undefined) {
    const want = req.gpu_type.toLowerCase();
    gpus = gpus.filter((g) => g.name.toLowerCase().includes(want));
  }
  if (req.gpu_memory_gb !== undefined) {
    const min = req.gpu_memory_gb;
    gpus = gpus.filter((g) => g.memory_gb >= min);
  }
  const needGpus = req.gpus ?? (req.gpu_type !== undefined || req.gpu_memory_gb !== undefined ? 1 : 0);
  if (gpus.length < needGpus) {
    const what = [
      `${needGpus} GPU(s)`,
      req.gpu_type !== undefined ? `of type ${req.gpu_type}` : "",
      req.gpu_memory_gb !== undefined ? `with ≥ ${req.gpu_memory_gb} GB` : "",
    ]
      .filter(Boolean)
      .join(" ");
    return { ok: false, reason: `needs ${what}, worker has ${gpus.length}` };
  }
  for (const [k, v] of Object.entries(req.labels ?? {})) {
    if (caps.labels[k] !== v) return { ok: false, reason: `needs label ${k}=${v}` };
  }
  return { ok: true };
}
