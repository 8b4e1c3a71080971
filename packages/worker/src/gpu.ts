import { execFile } from "node:child_process";
import type { Gpu } from "@nexa/core";

/** How a worker decides which GPUs it offers: discover them, or trust a count. */
export type GpuOption = "auto" | number;

/** A GPU as the worker sees it: the wire {@link Gpu} with its device index always set. */
export interface DiscoveredGpu extends Gpu {
  index: number;
}

/** Options of {@link discoverGpus}. */
export interface DiscoverGpusOptions {
  /** Program to run. @default "nvidia-smi" (looked up on PATH) */
  command?: string;
  /** Environment for the lookup (its PATH decides which `nvidia-smi` runs). @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Give up on a hung driver after this long. @default 10000 */
  timeoutMs?: number;
}

const QUERY = ["--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits"];

/**
 * The GPUs this machine offers. With `"auto"`, asks `nvidia-smi` and returns none when it is
 * absent or fails. With a number, trusts it: the first `n` GPUs `nvidia-smi` reports keep their
 * names and memory, and the rest (or all, without `nvidia-smi`) are reported as `name: "gpu"`
 * with unknown memory (0), indices counting from 0.
 *
 * @example
 * await discoverGpus("auto") // → [{ index: 0, name: "NVIDIA H100 80GB HBM3", memory_gb: 79.6, driver: "550.54.15" }]
 */
export async function discoverGpus(option: GpuOption, options: DiscoverGpusOptions = {}): Promise<DiscoveredGpu[]> {
  if (typeof option === "number" && (!Number.isInteger(option) || option < 0)) {
    throw new RangeError(`--gpus must be "auto" or a non-negative integer, got ${option}`);
  }
  if (option === 0) return [];
  const found = await queryNvidiaSmi(options);
  if (option === "auto") return found;
  const gpus: DiscoveredGpu[] = [];
  for (let i = 0; i < option; i++) gpus.push(found[i] ?? { index: i, name: "gpu", memory_gb: 0 });
  return gpus;
}

async function queryNvidiaSmi(options: DiscoverGpusOptions): Promise<DiscoveredGpu[]> {
  const stdout = await new Promise<string | null>((resolve) => {
    execFile(
      options.command ?? "nvidia-smi",
      QUERY,
      { env: options.env ?? process.env, timeout: options.timeoutMs ?? 10_000, encoding: "utf8" },
      // A missing binary (ENOENT), a driver error (non-zero exit) or a hang all mean "no GPUs".
      (err, out) => resolve(err ? null : out),
    );
  });
  return stdout === null ? [] : parseNvidiaSmi(stdout);
}

/** Parses `nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): DiscoveredGpu[] {
  const gpus: DiscoveredGpu[] = [];
  for (const raw of csv.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    // GPU names never contain commas; split from both ends anyway so one would survive.
    const parts = line.split(",").map((p) => p.trim());
    if (parts.length < 4) continue;
    const index = Number(parts[0]);
    const driver = parts[parts.length - 1] ?? "";
    const memMiB = Number(parts[parts.length - 2]);
    const name = parts.slice(1, -2).join(",");
    if (!Number.isInteger(index) || name === "") continue;
    const gpu: DiscoveredGpu = { index, name, memory_gb: Number.isFinite(memMiB) ? Math.round((memMiB / 1024) * 10) / 10 : 0 };
    if (driver !== "" && driver !== "[N/A]") gpu.driver = driver;
    gpus.push(gpu);
  }
  return gpus;
}
