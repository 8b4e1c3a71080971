import { readFileSync } from "node:fs";
import { ForgeError, JobStatus, JobType, type Job, type JobSubmissionInput } from "@nexa/core";
import type { ForgeClient } from "@nexa/sdk";
import type { Command } from "commander";
import pc from "picocolors";
import YAML from "yaml";
import { resolveClient, withClientOptions, type ClientFlags } from "../client-config.js";
import { ago, duration, elapsed, printFields, printJson, printTable, status } from "../output.js";

interface SubmitFlags extends ClientFlags {
  type?: string;
  file?: string;
  spec?: string;
  name?: string;
  priority?: string;
  project?: string;
  input?: string[];
  env?: string[];
  gpus?: string;
  gpuType?: string;
  cpus?: string;
  memory?: string;
  label?: string[];
  maxAttempts?: string;
  backoff?: string;
  maxRuntime?: string;
  maxCost?: string;
  grace?: string;
  idempotencyKey?: string;
  wait?: boolean;
  follow?: boolean;
  /** `--no-preflight` sets it false. */
  preflight?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function pairs(flag: string, list: string[] | undefined): Record<string, string> | undefined {
  if (!list || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new Error(`${flag}: expected NAME=VALUE, got ${JSON.stringify(item)}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function number(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${flag}: expected a number, got ${JSON.stringify(text)}`);
  return n;
}

/** Reads a JSON or YAML file. */
export function readStructured(path: string): unknown {
  const text = readFileSync(path, "utf8");
  try {
    return path.endsWith(".json") ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid ${path.endsWith(".json") ? "JSON" : "YAML"}: ${(err as Error).message}`);
  }
}

/** Builds a submission from flags (and the argv after `--` for command jobs). */
export function submissionFrom(flags: SubmitFlags, argv: string[]): JobSubmissionInput {
  let base: Record<string, unknown> = {};
  if (flags.file !== undefined) base = readStructured(flags.file) as Record<string, unknown>;
  const type = flags.type ?? (base.type as string | undefined) ?? (argv.length > 0 ? "command" : undefined);
  if (type === undefined) throw new Error("give the job type (--type), a job file (--file job.yaml), or a command after --");
  if (!JobType.safeParse(type).success) throw new Error(`--type: unknown job type ${JSON.stringify(type)} (one of ${JobType.options.join(", ")})`);
  let spec = (base.spec as Record<string, unknown> | undefined) ?? {};
  if (flags.spec !== undefined) {
    try {
      spec = { ...spec, ...(JSON.parse(flags.spec) as Record<string, unknown>) };
    } catch (err) {
      throw new Error(`--spec: not valid JSON: ${(err as Error).message}`);
    }
  }
  if (type === "command") {
    if (argv.length > 0) spec.argv = argv;
    const env = pairs("--env", flags.env);
    if (env) spec.env = { ...(spec.env as object), ...env };
    const inputs = pairs("--input", flags.input);
    if (inputs) spec.inputs = { ...(spec.inputs as object), ...inputs };
  }
  const requirements: Record<string, unknown> = { ...(base.requirements as object) };
  const gpus = number("--gpus", flags.gpus);
  if (gpus !== undefined) requirements.gpus = gpus;
  if (flags.gpuType !== undefined) requirements.gpu_type = flags.gpuType;
  const cpus = number("--cpus", flags.cpus);
  if (cpus !== undefined) requirements.cpus = cpus;
  const mem = number("--memory", flags.memory);
  if (mem !== undefined) requirements.memory_gb = mem;
  const labels = pairs("--label", flags.label);
  if (labels) requirements.labels = labels;
  const limits: Record<string, unknown> = { ...(base.limits as object) };
  const maxRuntime = number("--max-runtime", flags.maxRuntime);
  if (maxRuntime !== undefined) limits.max_runtime_s = maxRuntime;
  const maxCost = number("--max-cost", flags.maxCost);
  if (maxCost !== undefined) limits.max_cost_usd = maxCost;
  const grace = number("--grace", flags.grace);
  if (grace !== undefined) limits.grace_s = grace;
  const retry: Record<string, unknown> = { ...(base.retry as object) };
  const maxAttempts = number("--max-attempts", flags.maxAttempts);
  if (maxAttempts !== undefined) retry.max_attempts = maxAttempts;
  const backoff = number("--backoff", flags.backoff);
  if (backoff !== undefined) retry.backoff_s = backoff;
  const sub: Record<string, unknown> = { ...base, type, spec, requirements, limits };
  if (Object.keys(retry).length > 0) sub.retry = retry;
  if (flags.name !== undefined) sub.name = flags.name;
  if (flags.project !== undefined) sub.project = flags.project;
  const priority = number("--priority", flags.priority);
  if (priority !== undefined) sub.priority = priority;
  return sub as JobSubmissionInput;
}

function printJob(job: Job): void {
  printFields([
    ["id", job.id],
    ["type", job.type],
    ["name", job.name],
    ["status", status(job.status) + (job.cancel_requested && job.status === "running" ? pc.yellow(" (cancel requested)") : "")],
    ["waiting", job.waiting_reason],
    ["attempt", `${job.attempt} (max failures ${job.max_attempts})`],
    ["priority", job.priority],
    ["project", job.project],
    ["worker", job.worker_id],
    ["created", `${job.created_at} (${ago(job.created_at)})`],
    ["started", job.started_at],
    ["finished", job.finished_at],
    ["duration", duration(elapsed(job.started_at, job.finished_at))],
    ["error", job.error ? `${job.error.code}: ${job.error.message}` : null],
    ["cost", `$${job.usage.cost_usd.toFixed(6)} (wall ${duration(job.usage.wall_s)}, cpu ${duration(job.usage.cpu_s)})`],
  ]);
  const outputs = Object.entries(job.outputs ?? {});
  if (outputs.length > 0) {
    process.stdout.write(pc.bold("outputs\n"));
    printTable(["name", "digest", "size", "artifact"], outputs.map(([n, o]) => [n, o.digest.slice(0, 19) + "…", o.size, o.artifact_id ?? ""]));
  }
}

/** Streams logs to stdout/stderr until the job ends; resolves with the final job. */
export async function followJob(client: ForgeClient, id: string, json = false): Promise<Job> {
  for await (const line of client.followLogs(id)) {
    if (json) process.stdout.write(JSON.stringify(line) + "\n");
    else (line.stream === "stderr" ? process.stderr : process.stdout).write(`${line.line}\n`);
  }
  return client.getJob(id);
}

/** Preflight checks of the given statuses, one line each on stderr. */
function printPreflightLines(checks: readonly { name: string; status: string; message: string }[], statuses: string[]): void {
  for (const c of checks) {
    if (statuses.includes(c.status)) process.stderr.write(`${c.status === "fail" ? pc.red("preflight fail") : pc.yellow("preflight warn")} ${pc.bold(c.name)}: ${c.message}\n`);
  }
}

function exitFor(job: Job): number {
  return job.status === "succeeded" ? 0 : 1;
}

/** Registers `nexa jobs submit|list|get|logs|cancel|retry`. */
export function registerJobCommands(program: Command): void {
  const jobs = program.command("jobs").description("Submit, inspect, follow, cancel and retry jobs.");

  withClientOptions(
    jobs
      .command("submit")
      .description("Submit a job. A command job: nexa jobs submit -- python train.py --lr 3e-4")
      .argument("[argv...]", "for command jobs: the program and its arguments (after --)")
      .option("-t, --type <type>", `job type: ${JobType.options.join(", ")} (default command when argv is given)`)
      .option("-f, --file <file>", "a job file (YAML or JSON) with type, spec, requirements, limits, retry")
      .option("--spec <json>", "spec fields as JSON (merged over the file's)")
      .option("--name <name>", "job name")
      .option("--project <project>", "project, for usage grouping (default: default)")
      .option("--priority <n>", "higher runs first (default 0)")
      .option("--input <name=ref>", "command input: a blob digest or artifact id materialised at $NEXA_INPUTS_DIR/<name> (repeatable)", collect)
      .option("--env <NAME=VALUE>", "command environment variable (repeatable)", collect)
      .option("--gpus <n>", "GPUs needed")
      .option("--gpu-type <type>", "GPU type needed, e.g. H100")
      .option("--cpus <n>", "CPUs needed")
      .option("--memory <gb>", "memory needed, GB")
      .option("--label <k=v>", "worker label needed (repeatable)", collect)
      .option("--max-attempts <n>", "application failures allowed before the job fails (default 1)")
      .option("--backoff <seconds>", "base retry backoff (default 5)")
      .option("--max-runtime <seconds>", "guardrail: stop after this long")
      .option("--max-cost <usd>", "guardrail: stop past this cost")
      .option("--grace <seconds>", "SIGTERM → SIGKILL grace when stopped (default 30)")
      .option("--idempotency-key <key>", "a repeat with the same key returns the existing job")
      .option("-w, --wait", "wait until the job ends; exit non-zero unless it succeeded")
      .option("-F, --follow", "stream its logs until it ends; exit non-zero unless it succeeded")
      .option("--no-preflight", "train jobs: queue without the preflight checks (dataset, tokenizer, model fit)"),
  ).action(async (argv: string[], flags: SubmitFlags) => {
    const client = resolveClient(flags);
    const sub = submissionFrom(flags, argv);
    if (flags.preflight === false) sub.preflight = false;
    const job = await client.submitJob(sub, flags.idempotencyKey !== undefined ? { idempotencyKey: flags.idempotencyKey } : {}).catch((err: unknown) => {
      // A rejected train job: say which checks failed before the error itself.
      if (err instanceof ForgeError && err.code === "preflight_failed" && Array.isArray(err.details)) printPreflightLines(err.details as { name: string; status: string; message: string }[], ["fail", "warn"]);
      throw err;
    });
    if (job.preflight && !flags.json) printPreflightLines(job.preflight.checks, ["warn"]);
    if (flags.follow) {
      if (!flags.json) process.stderr.write(pc.dim(`submitted ${job.id}; following logs\n`));
      const done = await followJob(client, job.id, flags.json);
      if (flags.json) printJson(done);
      else process.stderr.write(`${job.id} ${status(done.status)}${done.error ? `: ${done.error.code}: ${done.error.message}` : ""}\n`);
      process.exitCode = exitFor(done);
      return;
    }
    if (flags.wait) {
      const done = await client.waitForJob(job.id);
      if (flags.json) printJson(done);
      else printJob(done);
      process.exitCode = exitFor(done);
      return;
    }
    if (flags.json) printJson(job);
    else {
      process.stdout.write(`${job.id}\n`);
      if (job.waiting_reason) process.stderr.write(pc.yellow(`queued: ${job.waiting_reason}\n`));
    }
  });

  withClientOptions(
    jobs
      .command("list")
      .description("List jobs, newest first.")
      .option("--status <status>", `filter: ${JobStatus.options.join(", ")}`)
      .option("--type <type>", "filter by job type")
      .option("--project <project>", "filter by project")
      .option("--limit <n>", "how many", "50")
      .option("--cursor <cursor>", "page after this cursor (from a previous --json answer)"),
  ).action(async (flags: ClientFlags & { status?: string; type?: string; project?: string; limit: string; cursor?: string }) => {
    const client = resolveClient(flags);
    const page = await client.listJobs({
      ...(flags.status ? { status: flags.status as Job["status"] } : {}),
      ...(flags.type ? { type: flags.type as Job["type"] } : {}),
      ...(flags.project ? { project: flags.project } : {}),
      ...(flags.cursor ? { cursor: flags.cursor } : {}),
      limit: Number(flags.limit),
    });
    if (flags.json) return printJson(page);
    printTable(
      ["id", "type", "name", "status", "attempt", "created", "duration", "cost $"],
      page.items.map((j) => [j.id, j.type, j.name, status(j.status), j.attempt, ago(j.created_at), duration(elapsed(j.started_at, j.finished_at)), j.usage.cost_usd.toFixed(4)]),
    );
    if (page.next_cursor) process.stdout.write(pc.dim(`more: --cursor ${page.next_cursor}\n`));
  });

  withClientOptions(jobs.command("get").description("Show one job.").argument("<id>", "job id")).action(async (id: string, flags: ClientFlags) => {
    const job = await resolveClient(flags).getJob(id);
    if (flags.json) printJson(job);
    else printJob(job);
  });

  withClientOptions(
    jobs
      .command("logs")
      .description("Print a job's logs; -f follows until the job ends.")
      .argument("<id>", "job id")
      .option("-f, --follow", "stream new lines until the job ends")
      .option("--attempt <n>", "only this attempt"),
  ).action(async (id: string, flags: ClientFlags & { follow?: boolean; attempt?: string }) => {
    const client = resolveClient(flags);
    if (flags.follow) {
      const done = await followJob(client, id, flags.json);
      if (!flags.json) process.stderr.write(pc.dim(`${id} ${done.status}\n`));
      process.exitCode = exitFor(done);
      return;
    }
    const lines = await client.getLogs(id, flags.attempt ? { attempt: Number(flags.attempt) } : {});
    for (const l of lines) {
      if (flags.json) process.stdout.write(JSON.stringify(l) + "\n");
      else (l.stream === "stderr" ? process.stderr : process.stdout).write(`${l.line}\n`);
    }
  });

  withClientOptions(jobs.command("cancel").description("Cancel jobs: queued at once, running by SIGTERM, grace, SIGKILL.").argument("<ids...>", "job ids")).action(
    async (ids: string[], flags: ClientFlags) => {
      const client = resolveClient(flags);
      const out: Job[] = [];
      for (const id of ids) out.push(await client.cancelJob(id));
      if (flags.json) return printJson(out);
      for (const j of out) process.stdout.write(`${j.id} ${j.status === "canceled" ? status("canceled") : "cancel requested"}\n`);
    },
  );

  withClientOptions(
    jobs
      .command("retry")
      .description("Retry failed (or canceled) jobs; --all-failed retries every failed job.")
      .argument("[ids...]", "job ids")
      .option("--all-failed", "retry every failed job (with --type / --since to narrow)")
      .option("--type <type>", "with --all-failed: only this job type")
      .option("--since <time>", "with --all-failed: only jobs that finished after this ISO time"),
  ).action(async (ids: string[], flags: ClientFlags & { allFailed?: boolean; type?: string; since?: string }) => {
    const client = resolveClient(flags);
    if (ids.length === 0 && !flags.allFailed) throw new Error("give job ids, or --all-failed");
    const out = await client.retryFailed(ids.length > 0 ? { ids } : { ...(flags.type ? { type: flags.type } : {}), ...(flags.since ? { since: flags.since } : {}) });
    if (flags.json) return printJson(out);
    process.stdout.write(`${out.length} job(s) re-queued\n`);
    for (const j of out) process.stdout.write(`${j.id}\n`);
  });
}
