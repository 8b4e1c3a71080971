import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { arch, availableParallelism, cpus, hostname, release, totalmem, type } from "node:os";

/** The hardware a worker reports in its capabilities and in every run manifest. */
export interface Hardware {
  hostname: string;
  cpu_model: string;
  cpus: number;
  memory_gb: number;
}

/** This machine's CPU and memory. */
export function hardware(): Hardware {
  return {
    hostname: hostname(),
    cpu_model: cpus()[0]?.model.trim() ?? "unknown",
    cpus: availableParallelism(),
    memory_gb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  };
}

let forgeVersion: Promise<string> | undefined;
/** The version of `@nexa/worker` (read from its package.json, from `src/` or `dist/`). */
export function workerVersion(): Promise<string> {
  forgeVersion ??= readFile(new URL("../package.json", import.meta.url), "utf8")
    .then((t) => String((JSON.parse(t) as { version?: unknown }).version ?? "unknown"))
    .catch(() => "unknown");
  return forgeVersion;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: "utf8" }, (err, out) => resolve(err ? null : out));
  });
}

let probe: Promise<void> | undefined;
let python: Record<string, string> = {};

/** Starts the one-time probe for python / torch versions (a `python3` that answers within 5 s). */
export function probePython(): Promise<void> {
  probe ??= run(
    "python3",
    ["-c", "import sys\nprint(sys.version.split()[0])\ntry:\n import torch\n print(torch.__version__)\nexcept Exception:\n print('')"],
    5000,
  ).then((out) => {
    if (out === null) return;
    const [py, torch] = out.split("\n").map((l) => l.trim());
    python = { ...(py ? { python: py } : {}), ...(torch ? { torch } : {}) };
  });
  return probe;
}

/**
 * Software versions for run manifests: node, forge, os, and python / torch once
 * {@link probePython} has answered (a manifest never waits for torch's slow import).
 */
export async function softwareVersions(): Promise<Record<string, string>> {
  return { node: process.versions.node, forge: await workerVersion(), os: `${type()} ${release()} ${arch()}`, ...python };
}
