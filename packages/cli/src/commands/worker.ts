import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { JobType } from "@nexa/core";
import type { GpuOption, WorkerAgentOptions } from "@nexa/worker";
import type { Command } from "commander";

/** What `nexa worker` accepts on its command line (commander's parsed options). */
export interface WorkerCliFlags {
  url?: string;
  apiKey?: string;
  name?: string;
  labels?: string;
  gpus?: string;
  accepts?: string;
  concurrency?: string;
  workdir?: string;
  grace?: string;
  cacheMaxGb?: string;
}

const DEFAULT_URL = "http://127.0.0.1:8000";
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** Whether a control-plane URL points at this machine (then the local credentials file applies). */
export function isLocalUrl(url: string): boolean {
  try {
    return LOCAL_HOSTS.has(new URL(url).hostname);
  } catch {
    return false;
  }
}

/** `k=v,k2=v2` → labels; throws naming the bad pair. */
export function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (text === undefined || text.trim() === "") return labels;
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    const k = pair.slice(0, eq).trim();
    if (eq <= 0 || k === "") throw new Error(`--labels: expected k=v pairs separated by commas, got ${JSON.stringify(pair)}`);
    labels[k] = pair.slice(eq + 1).trim();
  }
  return labels;
}

/** `auto` or a non-negative integer. */
export function parseGpus(text: string | undefined): GpuOption {
  if (text === undefined || text === "auto") return "auto";
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new Error(`--gpus: expected "auto" or a number of GPUs, got ${JSON.stringify(text)}`);
  return n;
}

/** Comma-separated job types, checked against the closed list. */
export function parseAccepts(text: string | undefined): JobType[] | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  return text.split(",").map((t) => {
    const r = JobType.safeParse(t.trim());
    if (!r.success) throw new Error(`--accepts: unknown job type ${JSON.stringify(t.trim())} (one of ${JobType.options.join(", ")})`);
    return r.data;
  });
}

function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

async function readCredentialsFile(home: string): Promise<{ url?: string; api_key?: string } | undefined> {
  try {
    const c = JSON.parse(await readFile(join(home, "credentials"), "utf8")) as { url?: unknown; api_key?: unknown };
    return {
      ...(typeof c.url === "string" && c.url !== "" ? { url: c.url } : {}),
      ...(typeof c.api_key === "string" ? { api_key: c.api_key } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Flags, environment and the credentials file → agent options. Precedence: flag > env
 * (`NEXA_URL`, `NEXA_API_KEY`) > `$NEXA_HOME/credentials` (only when the URL is local) > default.
 */
export async function resolveWorkerCli(flags: WorkerCliFlags, env: NodeJS.ProcessEnv = process.env): Promise<WorkerAgentOptions & { url: string; keySource: string }> {
  // An empty variable counts as unset (`NEXA_URL= nexa worker`).
  const fromEnv = (name: string) => (env[name] === undefined || env[name] === "" ? undefined : env[name]);
  const home = fromEnv("NEXA_HOME") ?? join(homedir(), ".nexa");
  const creds = await readCredentialsFile(home);
  const url = flags.url ?? fromEnv("NEXA_URL") ?? creds?.url ?? DEFAULT_URL;
  let apiKey = flags.apiKey ?? fromEnv("NEXA_API_KEY");
  let keySource = flags.apiKey !== undefined ? "--api-key" : fromEnv("NEXA_API_KEY") !== undefined ? "NEXA_API_KEY" : "none";
  if (apiKey === undefined && isLocalUrl(url) && creds?.api_key !== undefined) {
    apiKey = creds.api_key;
    keySource = join(home, "credentials");
  }
  const graceS = flags.grace === undefined ? 30 : Number(flags.grace);
  if (!Number.isFinite(graceS) || graceS < 0) throw new Error(`--grace: expected seconds ≥ 0, got ${JSON.stringify(flags.grace)}`);
  const accepts = parseAccepts(flags.accepts);
  const cacheGb = flags.cacheMaxGb === undefined ? undefined : Number(flags.cacheMaxGb);
  if (cacheGb !== undefined && (!Number.isFinite(cacheGb) || cacheGb <= 0)) throw new Error(`--cache-max-gb: expected a positive number, got ${JSON.stringify(flags.cacheMaxGb)}`);
  return {
    url,
    keySource,
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(flags.name !== undefined ? { name: flags.name } : {}),
    labels: parseLabels(flags.labels),
    gpus: parseGpus(flags.gpus),
    ...(accepts !== undefined ? { accepts } : {}),
    concurrency: positiveInt("--concurrency", flags.concurrency, 1),
    workdir: flags.workdir ?? join(home, "work"),
    graceMs: graceS * 1000,
    ...(cacheGb !== undefined ? { cacheMaxBytes: Math.round(cacheGb * 2 ** 30) } : {}),
  };
}

/**
 * Runs a worker until SIGTERM / SIGINT (or `signal`): then stops claiming, stops running jobs
 * with the grace period, reports them preempted (re-queued without spending their failure
 * budget) and deregisters. A second SIGINT exits at once.
 */
export async function runWorker(flags: WorkerCliFlags, io: { out?: (line: string) => void; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<void> {
  const out = io.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const say = (line: string) => out(`${new Date().toISOString()} ${line}`);
  const { keySource, ...options } = await resolveWorkerCli(flags, io.env ?? process.env);
  if (options.apiKey === undefined) {
    throw new Error(`no API key for ${options.url}: pass --api-key or set NEXA_API_KEY (a key with the worker scope: nexa keys create --scopes worker)`);
  }
  say(`connecting to ${options.url} (key from ${keySource})`);
  // Loaded here, not at the top, so other commands start without the worker's dependencies.
  const { WorkerAgent } = await import("@nexa/worker");
  const agent = new WorkerAgent({ ...options, log: say });
  await agent.start();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1 && sig === "SIGINT") {
      say("second interrupt: exiting now (running jobs will be re-queued when their leases expire)");
      process.exit(130);
    }
    say(`${sig}: stopping — no new claims; running jobs get SIGTERM, ${options.graceMs ?? 30_000} ms grace, then SIGKILL, and are re-queued`);
    agent.stop().catch((err: unknown) => say(`stop failed: ${(err as Error).message}`));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const onAbort = () => agent.stop().catch((err: unknown) => say(`stop failed: ${(err as Error).message}`));
  io.signal?.addEventListener("abort", onAbort, { once: true });
  if (io.signal?.aborted) void onAbort();
  try {
    await agent.done;
    say("worker stopped");
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    io.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Registers `nexa worker` on the root program.
 *
 * @example
 * nexa worker --url https://forge.example.com --api-key nxk_… --gpus auto --labels zone=eu,spot=1 --concurrency 2
 */
export function registerWorkerCommand(program: Command): void {
  program
    .command("worker")
    .description("Run a worker agent on this machine: claim jobs from the control plane and run them.")
    .option("--url <url>", `control plane URL (env NEXA_URL; default ${DEFAULT_URL})`)
    .option("--api-key <key>", "API key with the worker scope (env NEXA_API_KEY; default: $NEXA_HOME/credentials when the URL is local)")
    .option("--name <name>", "worker name; re-registering a name drops that worker's old leases (default: hostname)")
    .option("--labels <k=v,...>", "labels jobs can require, comma-separated")
    .option("--gpus <auto|N>", "GPUs: discover with nvidia-smi, or trust a count", "auto")
    .option("--accepts <types>", "job types to run, comma-separated (default: every type this worker has a handler for)")
    .option("--concurrency <n>", "attempts to run at once", "1")
    .option("--workdir <dir>", "workspaces and the artifact cache (default: $NEXA_HOME/work)")
    .option("--grace <seconds>", "time between SIGTERM and SIGKILL when a job is stopped", "30")
    .option("--cache-max-gb <gb>", "bound on the artifact cache, least recently used evicted first (default: no limit)")
    .action(async (flags: WorkerCliFlags) => {
      await runWorker(flags);
    });
}
