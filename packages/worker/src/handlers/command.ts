import { join } from "node:path";
import { CommandSpec } from "@nexa/core";
import { CheckpointUploader } from "../checkpoints.js";
import { JobFailure, type Handler, type HandlerContext, type HandlerResult } from "../handler.js";
import { ProcessSupervisor, type ProcessExit } from "../supervisor.js";

/** Log lines quoted in an `exit_nonzero` failure message. */
const TAIL_LINES = 20;

/**
 * The environment of a process job under the job contract (DESIGN.md): the worker's own
 * environment, the spec's `env`, then the `NEXA_*` variables (which the spec cannot override).
 */
export function processEnv(ctx: HandlerContext, specEnv: Record<string, string> | undefined, metricsFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...specEnv };
  // Never hand the worker's own credentials to the job.
  delete env.NEXA_API_KEY;
  env.NEXA_JOB_ID = ctx.job.id;
  env.NEXA_ATTEMPT = String(ctx.attempt);
  env.NEXA_INPUTS_DIR = ctx.inputsDir;
  env.NEXA_OUTPUTS_DIR = ctx.outputsDir;
  env.NEXA_CHECKPOINT_DIR = ctx.checkpointDir;
  env.NEXA_METRICS_FILE = metricsFile;
  env.NEXA_RESUME = ctx.resumed ? "1" : "0";
  const gpus = ctx.gpus ?? [];
  if (gpus.length > 0 || ctx.workerHasGpus === true) {
    env.CUDA_VISIBLE_DEVICES = gpus.map((g, i) => String(g.index ?? i)).join(",");
  }
  return env;
}

/** What a handler that runs a process sets up around it (see {@link processIo}). */
export interface ProcessIo {
  /** `NEXA_METRICS_FILE` of the process. */
  metricsFile: string;
  /** The last output lines, quoted in the error when the process fails. */
  tail: string[];
  /** Ships a line to the job's log and keeps it in {@link tail}. */
  onLine: (stream: "stdout" | "stderr", line: string) => void;
  /** Uploads complete checkpoints (keep-last-k); null when the worker has no cache. */
  uploader: CheckpointUploader | null;
  /** The process once spawned: before a checkpoint is recorded, its metrics file is read and shipped. */
  attach: (proc: ProcessSupervisor) => void;
}

/**
 * The metrics file, the output tail and the checkpoint uploader of a process run under the job
 * contract (`command`, `train`). Lines for which `untracked` is true are logged but kept out of the tail.
 */
export async function processIo(ctx: HandlerContext, o: { keepLast: number; tailLines: number; untracked?: (line: string) => boolean }): Promise<ProcessIo> {
  const metricsFile = ctx.metricsFile ?? join(ctx.workdir, "metrics.jsonl");
  const tail: string[] = [];
  const onLine = (stream: "stdout" | "stderr", line: string) => {
    ctx.log(line, stream);
    if (o.untracked?.(line) === true) return;
    tail.push(line);
    if (tail.length > o.tailLines) tail.shift();
  };
  let proc: ProcessSupervisor | undefined;
  const uploader = ctx.cache
    ? await CheckpointUploader.start({
        api: ctx.api,
        cache: ctx.cache,
        job: ctx.job,
        dir: ctx.checkpointDir,
        scratchDir: join(ctx.workdir, ".scratch"),
        keepLast: o.keepLast,
        log: (l) => ctx.log(l, "system"),
        beforeRecord: async () => {
          await proc?.readMetrics();
          await ctx.flush?.();
        },
      })
    : null;
  return { metricsFile, tail, onLine, uploader, attach: (p) => (proc = p) };
}

/**
 * The `command` handler: runs `spec.argv` under the process contract — inputs materialised
 * read-only, outputs folder, metrics file, checkpoints uploaded when marked `COMPLETE` (keeping
 * the newest `spec.checkpoint.keep_last` on disk; needs {@link HandlerContext.cache}),
 * `limits.max_runtime_s` enforced with the grace period. Stops with SIGTERM, grace, SIGKILL
 * when the attempt's signal aborts. The newest checkpoint is restored by the runtime before
 * the handler starts ({@link HandlerContext.resumed}).
 *
 * Failure codes: `exit_nonzero` (with the last log lines), `spawn_failed`, `invalid_spec`,
 * `input_missing`, `guardrail_max_runtime_s` (kind `guardrail`), and `canceled` / `preempted` /
 * `lease_lost` after a stop.
 */
export const commandHandler: Handler = (ctx) => runCommand(ctx);

async function runCommand(ctx: HandlerContext): Promise<HandlerResult> {
  const parsed = CommandSpec.safeParse(ctx.job.spec);
  if (!parsed.success) {
    throw new JobFailure("invalid_spec", `invalid command spec: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, {
      retryable: false,
    });
  }
  const spec = parsed.data;

  for (const [name, ref] of Object.entries(spec.inputs ?? {})) {
    try {
      await ctx.fetchInput(ref, name);
    } catch (err) {
      if (err instanceof JobFailure) throw err;
      const e = err as { code?: string; message?: string; retryable?: boolean };
      const missing = e.code === "not_found";
      throw new JobFailure(missing ? "input_missing" : "input_unavailable", `input ${name} (${ref}): ${e.message ?? String(err)}`, {
        retryable: !missing,
        cause: err,
      });
    }
  }
  if (ctx.signal.aborted) throw stopped(String(ctx.signal.reason));

  const { metricsFile, tail, onLine, uploader, attach } = await processIo(ctx, { keepLast: spec.checkpoint?.keep_last ?? 2, tailLines: TAIL_LINES });

  let exit: ProcessExit;
  let guardrail = false;
  const proc = await ProcessSupervisor.spawn({
    argv: spec.argv,
    env: processEnv(ctx, spec.env, metricsFile),
    cwd: ctx.workdir,
    graceMs: ctx.graceMs,
    onLine,
    metricsFile,
    onMetric: (name, step, value) => ctx.metric(name, step, value),
    onBadMetric: (line) => ctx.log(`ignored metrics line (not a JSON object): ${line.slice(0, 200)}`, "system"),
    pidFile: join(ctx.workdir, ".pid"),
  });
  attach(proc);
  const onAbort = () => {
    ctx.log(`stopping (${String(ctx.signal.reason)}): SIGTERM, then SIGKILL after ${ctx.graceMs} ms`, "system");
    proc.stop(String(ctx.signal.reason));
  };
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  if (ctx.signal.aborted) onAbort();
  const maxRuntimeS = ctx.job.limits.max_runtime_s;
  const runtimeTimer =
    maxRuntimeS === undefined
      ? undefined
      : setTimeout(() => {
          guardrail = true;
          ctx.log(`max_runtime_s ${maxRuntimeS} reached: stopping`, "system");
          proc.stop("guardrail_max_runtime_s");
        }, maxRuntimeS * 1000);
  try {
    exit = await proc.exited;
  } finally {
    if (runtimeTimer) clearTimeout(runtimeTimer);
    ctx.signal.removeEventListener("abort", onAbort);
  }
  // A checkpoint written during the grace period still gets uploaded.
  await uploader?.close();

  const gpus = ctx.gpus ?? [];
  const gpu_s: Record<string, number> = {};
  for (const g of gpus) gpu_s[g.name] = (gpu_s[g.name] ?? 0) + exit.wallS;
  ctx.addUsage({ wall_s: exit.wallS, cpu_s: exit.cpuS, gpu_s });
  const exitInfo = { code: exit.code, signal: exit.signal };
  ctx.annotate({
    process: {
      argv: spec.argv,
      pid: proc.pid,
      exit: exitInfo,
      killed: exit.killed,
      stop_reason: exit.stopReason ?? null,
      started_at: new Date(exit.startedAt).toISOString(),
      ended_at: new Date(exit.endedAt).toISOString(),
    },
  });

  if (exit.spawnError) {
    throw new JobFailure("spawn_failed", `cannot start ${spec.argv[0] ?? ""}: ${exit.spawnError.message}`, {
      retryable: false,
      details: { exit: exitInfo },
    });
  }
  if (guardrail || exit.stopReason === "guardrail_max_runtime_s") {
    throw new JobFailure("guardrail_max_runtime_s", `stopped after max_runtime_s ${maxRuntimeS ?? ""} s${exit.killed ? " (killed after the grace period)" : ""}`, {
      kind: "guardrail",
      retryable: false,
      details: { exit: exitInfo },
    });
  }
  if (exit.stopReason !== undefined) throw stopped(exit.stopReason, exitInfo);
  if (exit.code !== 0) {
    const how = exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal ?? "a signal"}`;
    const lastLines = tail.length > 0 ? `; last ${tail.length} log lines:\n${tail.join("\n")}` : "";
    throw new JobFailure("exit_nonzero", `${spec.argv[0] ?? "process"} ${how}${lastLines}`, { retryable: true, details: { exit: exitInfo } });
  }
  return { exit: exitInfo };
}

function stopped(reason: string, exit?: { code: number | null; signal: string | null }): JobFailure {
  const kind = reason === "canceled" ? "canceled" : reason === "preempted" || reason === "lease_lost" ? "preempted" : "error";
  return new JobFailure(reason, `stopped: ${reason}`, { kind, retryable: kind !== "canceled", details: exit ? { exit } : undefined });
}
