import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism, homedir } from "node:os";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as tar from "tar";
import { DEFAULT_PRICES, gpuHourPrice, TrainSpec, type Limits, type PriceTable } from "@nexa/core";
import { packDataset, TokenizeError, TIKTOKEN_ENCODINGS, type PackManifest } from "@nexa/data";
import { JobFailure, type Handler, type HandlerContext, type HandlerResult } from "../handler.js";
import { ProcessSupervisor, type ProcessExit } from "../supervisor.js";
import { processEnv, processIo } from "./command.js";

/** Log lines quoted in a trainer failure message. */
const TAIL_LINES = 30;
/** How often the cost guardrail is evaluated. */
const COST_CHECK_MS = 1000;
/** The line the torch recipe prints with its outcome (also written to `status.json`). */
const STATUS_PREFIX = "NEXA_TRAIN_STATUS ";

/** What the torch recipe reports about its run (`status_file`). */
interface TrainerStatus {
  status: "completed" | "stopped" | "failed";
  code?: string;
  message?: string;
  step?: number;
  tokens?: number;
  first_loss?: number;
  final_loss?: number;
  eval_loss?: number | null;
}

/**
 * The Python that runs recipes: `NEXA_PYTHON`; else the venv `nexa demo` sets up
 * (`$NEXA_HOME/venv`, default `~/.nexa/venv`) when it exists; else `python3` on the PATH.
 */
export function workerPython(): string {
  if (process.env.NEXA_PYTHON !== undefined && process.env.NEXA_PYTHON !== "") return process.env.NEXA_PYTHON;
  const home = process.env.NEXA_HOME !== undefined && process.env.NEXA_HOME !== "" ? process.env.NEXA_HOME : join(homedir(), ".nexa");
  const venv = join(home, "venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

/**
 * The repository's `recipes/` folder: `NEXA_RECIPES_DIR`, else found by walking up from this
 * module (works from `src/`, `dist/` and from test bundles inside the repository).
 */
export function recipesDir(): string {
  const fromEnv = process.env.NEXA_RECIPES_DIR;
  if (fromEnv !== undefined && fromEnv !== "") return resolve(fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, "recipes", "torch", "train.py"))) return join(dir, "recipes");
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new JobFailure("recipe_missing", "cannot find the recipes/ folder of Nexa Forge: set NEXA_RECIPES_DIR", { retryable: false });
}

/**
 * The `train` handler. Data stage: the dataset (JSONL) is tokenized and packed with
 * `@nexa/data` `packDataset` into `<workdir>/packed` (deterministic for a given spec, so a
 * resumed attempt sees the same sequence order). Then the backend:
 * - `torch`: `recipes/torch/train.py` with the worker's Python (`NEXA_PYTHON` or `python3`),
 *   through `python -m torch.distributed.run --nproc-per-node N` when N > 1 GPUs are assigned;
 * - `axolotl`: writes `axolotl.yaml` from the spec and runs `accelerate launch -m axolotl.cli.train`;
 * - `command`: `spec.argv` under the process contract, with `NEXA_PACKED_DIR` and `NEXA_TRAIN_CONFIG`.
 *
 * Checkpoints go through the same uploader as `command` jobs ({@link processIo}); the runtime
 * restores the newest before the attempt. The model folder the trainer leaves in
 * `$NEXA_OUTPUTS_DIR/model/` becomes one `model.tar` output (kind `model`).
 *
 * Failure codes: `invalid_spec`, `invalid_dataset`, `invalid_tokenizer`, `invalid_model_config`,
 * `input_missing`, `backend_unavailable`, `trainer_failed`, `oom` (each with the trainer's last
 * log lines), `guardrail_max_runtime_s` / `guardrail_max_cost_usd` / `guardrail_max_tokens`
 * (kind `guardrail`: outputs and checkpoints kept), and `canceled` / `preempted` after a stop.
 */
export const trainHandler: Handler = (ctx) => runTrain(ctx);

async function runTrain(ctx: HandlerContext): Promise<HandlerResult> {
  const parsed = TrainSpec.safeParse(ctx.job.spec);
  if (!parsed.success) {
    throw new JobFailure("invalid_spec", `invalid train spec: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, { retryable: false });
  }
  const spec = parsed.data;
  if (spec.backend === "command" && spec.argv === undefined) {
    throw new JobFailure("invalid_spec", "backend command needs argv: the trainer to run", { retryable: false });
  }

  const dataset = await fetchOrFail(ctx, spec.dataset, "dataset.jsonl");
  const tokenizer = await resolveTokenizer(ctx, spec.pack?.tokenizer ?? "cl100k_base");
  const weights = await resolveWeights(ctx, spec.model.weights);
  if (ctx.signal.aborted) throw stopped(String(ctx.signal.reason));

  const packedDir = join(ctx.workdir, "packed");
  const manifest = await packStage(ctx, spec, dataset, tokenizer, packedDir);
  if (ctx.signal.aborted) throw stopped(String(ctx.signal.reason));

  const statusFile = join(ctx.workdir, "status.json");
  const trainConfig = {
    data_dir: packedDir,
    model: { config: spec.model.config ?? null, weights, lora: spec.model.lora ?? null, precision: spec.model.precision },
    hyperparameters: spec.hyperparameters ?? {},
    tokenizer: spec.pack?.tokenizer ?? "cl100k_base",
    tokenizer_dir: TIKTOKEN_ENCODINGS.includes(tokenizer as never) ? null : tokenizer,
    status_file: statusFile,
    pack: { seq_len: manifest.seq_len, sequences: manifest.sequences, tokens: manifest.tokens, vocab_size: manifest.tokenizer.vocab_size },
  };
  const configFile = join(ctx.workdir, "train_config.json");
  await writeFile(configFile, JSON.stringify(trainConfig, null, 2));

  const python = workerPython();
  const nGpus = (ctx.gpus ?? []).length;
  let argv: string[];
  const extraEnv: Record<string, string> = { NEXA_PACKED_DIR: packedDir, NEXA_TRAIN_CONFIG: configFile, PYTHONUNBUFFERED: "1" };
  switch (spec.backend) {
    case "torch": {
      const recipe = join(recipesDir(), "torch", "train.py");
      argv = nGpus > 1
        ? [python, "-m", "torch.distributed.run", "--standalone", `--nproc-per-node=${nGpus}`, recipe, "--config", configFile]
        : [python, recipe, "--config", configFile];
      extraEnv.PYTHONPATH = [join(recipesDir(), "..", "python"), process.env.PYTHONPATH].filter((p) => p !== undefined && p !== "").join(":");
      break;
    }
    case "axolotl": {
      await requireAxolotl(python);
      const yamlFile = join(ctx.workdir, "axolotl.yaml");
      await writeFile(yamlFile, axolotlConfig(spec, { dataset, tokenizerDir: trainConfig.tokenizer_dir, weights, checkpointDir: ctx.checkpointDir, outputsDir: ctx.outputsDir, seqLen: manifest.seq_len }));
      argv = ["accelerate", "launch", ...(nGpus > 1 ? ["--num_processes", String(nGpus), "--multi_gpu"] : []), "-m", "axolotl.cli.train", yamlFile];
      break;
    }
    case "command":
      argv = spec.argv ?? [];
      break;
  }
  ctx.annotate({ train: { backend: spec.backend, argv, pack: { sequences: manifest.sequences, tokens: manifest.tokens, seq_len: manifest.seq_len, efficiency: manifest.efficiency, tokenizer: manifest.tokenizer } } });

  const run = await superviseTrainer(ctx, spec, argv, extraEnv);
  const status = await readStatus(statusFile, run.tail);
  await finishOutputs(ctx, status, spec);
  classify(run, status, spec.backend, ctx.job.limits);
  return { exit: { code: run.exit.code, signal: run.exit.signal } };
}

async function fetchOrFail(ctx: HandlerContext, ref: string, name: string): Promise<string> {
  try {
    return await ctx.fetchInput(ref, name);
  } catch (err) {
    if (err instanceof JobFailure) throw err;
    const e = err as { code?: string; message?: string };
    const missing = e.code === "not_found";
    throw new JobFailure(missing ? "input_missing" : "input_unavailable", `input ${name} (${ref}): ${e.message ?? String(err)}`, { retryable: !missing, cause: err });
  }
}

const isRef = (s: string) => /^sha256:[0-9a-f]{64}$/.test(s) || /^art_[0-9A-Za-z]+$/.test(s);

/** `cl100k_base` / `o200k_base`, an artifact or digest of a `tokenizer.json`, or a local folder. */
async function resolveTokenizer(ctx: HandlerContext, spec: string): Promise<string> {
  if (TIKTOKEN_ENCODINGS.includes(spec as never)) return spec;
  if (isRef(spec)) {
    const file = await fetchOrFail(ctx, spec, "tokenizer/tokenizer.json");
    return dirname(file);
  }
  const st = await stat(spec).catch(() => undefined);
  if (st?.isDirectory()) return resolve(spec);
  throw new JobFailure("invalid_tokenizer", `tokenizer ${JSON.stringify(spec)}: not ${TIKTOKEN_ENCODINGS.join(" / ")}, an artifact of a tokenizer.json, nor a folder on this worker`, { retryable: false });
}

/** Model weights: a local folder, or a `model.tar` artifact / digest unpacked into the workdir. */
async function resolveWeights(ctx: HandlerContext, weights: string | undefined): Promise<string | null> {
  if (weights === undefined) return null;
  if (!isRef(weights)) {
    const st = await stat(weights).catch(() => undefined);
    if (!st?.isDirectory()) throw new JobFailure("invalid_model_config", `model.weights ${weights} is not a folder on this worker`, { retryable: false });
    return resolve(weights);
  }
  const file = await fetchOrFail(ctx, weights, "weights.tar");
  const dir = join(ctx.workdir, "weights");
  await mkdir(dir, { recursive: true });
  try {
    await tar.x({ file, cwd: dir });
  } catch (err) {
    throw new JobFailure("invalid_model_config", `model.weights ${weights} is not a model.tar archive: ${(err as Error).message}`, { retryable: false, cause: err });
  }
  return existsSync(join(dir, "model", "config.json")) ? join(dir, "model") : dir;
}

async function packStage(ctx: HandlerContext, spec: TrainSpec, dataset: string, tokenizer: string, out: string): Promise<PackManifest> {
  const p = spec.pack;
  const t0 = Date.now();
  ctx.log(`data stage: packing ${spec.dataset} with ${p?.tokenizer ?? "cl100k_base"} into sequences of ${p?.seq_len ?? 2048}`, "system");
  // Large datasets tokenize on worker threads, which also keeps the event loop (heartbeats) free.
  const size = (await stat(dataset)).size;
  const threads = size >= 8 * 1024 * 1024 ? Math.max(1, Math.min(8, availableParallelism() - 1)) : 1;
  try {
    const manifest = await packDataset({
      threads,
      inputs: [dataset],
      out,
      tokenizer,
      seqLen: p?.seq_len ?? 2048,
      strategy: p?.strategy ?? "bfd",
      overlong: p?.overlong ?? "split",
      seed: p?.seed ?? 0,
      // The torch recipe reads the memory-mapped arrays.
      outputFormat: spec.backend === "torch" ? "npy" : (p?.format ?? "npy"),
      format: {
        lossOn: p?.loss_on ?? "assistant",
        textField: spec.fields?.text ?? "text",
        messagesField: spec.fields?.messages ?? "messages",
        ...(p?.chat_template !== undefined ? { chatTemplate: p.chat_template } : {}),
      },
    });
    ctx.log(`data stage: ${manifest.documents} documents → ${manifest.sequences} sequences, ${manifest.tokens} tokens (${(manifest.efficiency * 100).toFixed(1)}% efficient) in ${((Date.now() - t0) / 1000).toFixed(1)} s`, "system");
    return manifest;
  } catch (err) {
    if (err instanceof TokenizeError) {
      const code = err.code === "tokenizer_invalid" ? "invalid_tokenizer" : err.code === "seq_len_too_small" ? "invalid_spec" : err.code === "output_failed" ? "pack_failed" : "invalid_dataset";
      throw new JobFailure(code, `data stage: ${err.message}`, { retryable: code === "pack_failed", cause: err, details: { tokenize_code: err.code } });
    }
    throw err;
  }
}

async function requireAxolotl(python: string): Promise<void> {
  const ok = await new Promise<boolean>((res) => {
    const p = spawn(python, ["-c", "import axolotl"], { stdio: "ignore" });
    p.once("error", () => res(false));
    p.once("exit", (code) => res(code === 0));
  });
  if (!ok) {
    throw new JobFailure("backend_unavailable", `backend axolotl: the package is not installed in ${python} (pip install axolotl accelerate), or use backend torch`, { retryable: false });
  }
}

/**
 * The Axolotl YAML for a spec (a subset Axolotl documents: base model, datasets, LoRA, batch,
 * schedule, precision, output and checkpoint folders).
 */
export function axolotlConfig(spec: TrainSpec, where: { dataset: string; tokenizerDir: string | null; weights: string | null; checkpointDir: string; outputsDir: string; seqLen: number }): string {
  const hp = spec.hyperparameters;
  const lora = spec.model.lora;
  const base = where.weights ?? (typeof spec.model.config?._name_or_path === "string" ? spec.model.config._name_or_path : null);
  if (base === null) throw new JobFailure("invalid_model_config", "backend axolotl needs model.weights (a base model folder): Axolotl does not train from a bare config", { retryable: false });
  const loss = spec.pack?.loss_on ?? "assistant";
  const lines: Array<[string, unknown]> = [
    ["base_model", base],
    ["tokenizer_config", where.tokenizerDir ?? base],
    ["datasets", [{ path: where.dataset, ds_type: "json", type: "completion", field: spec.fields?.text ?? "text" }]],
    ["train_on_inputs", loss === "all"],
    ["sequence_len", where.seqLen],
    ["sample_packing", true],
    ["pad_to_sequence_len", true],
    ["adapter", lora ? "lora" : null],
    ["lora_r", lora?.r ?? null],
    ["lora_alpha", lora?.alpha ?? null],
    ["lora_dropout", lora?.dropout ?? null],
    ["lora_target_linear", lora ? lora.target_modules === undefined : null],
    ["lora_target_modules", lora?.target_modules ?? null],
    ["micro_batch_size", hp?.micro_batch_size ?? 1],
    ["gradient_accumulation_steps", hp?.grad_accum ?? 1],
    ["num_epochs", hp?.epochs ?? 1],
    ["max_steps", hp?.max_steps ?? null],
    ["learning_rate", hp?.lr ?? 3e-4],
    ["lr_scheduler", "cosine"],
    ["warmup_steps", hp?.warmup_steps ?? 0],
    ["weight_decay", hp?.weight_decay ?? 0],
    ["max_grad_norm", hp?.max_grad_norm ?? 1],
    ["optimizer", "adamw_torch"],
    ["bf16", spec.model.precision === "bf16"],
    ["fp16", spec.model.precision === "fp16"],
    ["gradient_checkpointing", hp?.gradient_checkpointing ?? false],
    ["eval_steps", hp?.eval_every ?? null],
    ["val_set_size", hp?.eval_every !== undefined ? (hp.eval_fraction ?? 0.05) : 0],
    ["save_steps", hp?.checkpoint_every ?? null],
    ["save_total_limit", spec.checkpoint?.keep_last ?? 2],
    ["output_dir", join(where.outputsDir, "model")],
    ["seed", hp?.seed ?? 0],
  ];
  return lines.filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n";
}

interface TrainerRun {
  exit: ProcessExit;
  tail: string[];
  /** Which guardrail stopped the trainer, if one did. */
  guardrail: "max_runtime_s" | "max_cost_usd" | "max_tokens" | null;
  tokens: number;
}

/**
 * Estimated cost so far of an attempt: its GPUs' hourly prices (or one CPU when it has none)
 * over the wall time, with the built-in price table (the worker does not hold the server's).
 */
export function attemptCostUsd(wallS: number, gpuNames: readonly string[], prices: PriceTable = DEFAULT_PRICES): number {
  const perHour = gpuNames.length > 0 ? gpuNames.reduce((sum, g) => sum + gpuHourPrice(prices, g), 0) : prices.cpu_hour;
  return (wallS / 3600) * perHour;
}

async function superviseTrainer(ctx: HandlerContext, spec: TrainSpec, argv: string[], extraEnv: Record<string, string>): Promise<TrainerRun> {
  const { metricsFile, tail, onLine, uploader, attach } = await processIo(ctx, { keepLast: spec.checkpoint?.keep_last ?? 2, tailLines: TAIL_LINES, untracked: (line) => line.startsWith(STATUS_PREFIX) });

  const limits = ctx.job.limits;
  let guardrail: TrainerRun["guardrail"] = null;
  let tokens = 0;
  // The metrics callback may trip a guardrail: it needs the process it is given to.
  const running: { proc?: ProcessSupervisor } = {};
  const trip = (which: NonNullable<TrainerRun["guardrail"]>, why: string) => {
    if (guardrail !== null || running.proc === undefined) return;
    guardrail = which;
    ctx.log(`${why}: stopping (SIGTERM, final checkpoint, SIGKILL after ${ctx.graceMs} ms)`, "system");
    running.proc.stop(`guardrail_${which}`);
  };
  const env = processEnv(ctx, { ...spec.env, ...extraEnv }, metricsFile);
  const proc = await ProcessSupervisor.spawn({
    argv,
    env,
    cwd: ctx.workdir,
    graceMs: ctx.graceMs,
    onLine,
    metricsFile,
    onMetric: (name, step, value) => {
      ctx.metric(name, step, value);
      if (name === "tokens") {
        tokens = value;
        if (limits.max_tokens !== undefined && tokens >= limits.max_tokens) trip("max_tokens", `max_tokens ${limits.max_tokens} reached (${tokens} tokens trained)`);
      }
    },
    onBadMetric: (line) => ctx.log(`ignored metrics line (not a JSON object): ${line.slice(0, 200)}`, "system"),
    pidFile: join(ctx.workdir, ".pid"),
  });
  running.proc = proc;
  attach(proc);
  const started = Date.now();
  const onAbort = () => {
    ctx.log(`stopping (${String(ctx.signal.reason)}): SIGTERM, then SIGKILL after ${ctx.graceMs} ms`, "system");
    proc.stop(String(ctx.signal.reason));
  };
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  if (ctx.signal.aborted) onAbort();
  const timers: NodeJS.Timeout[] = [];
  if (limits.max_runtime_s !== undefined) {
    const s = limits.max_runtime_s;
    timers.push(setTimeout(() => trip("max_runtime_s", `max_runtime_s ${s} reached`), s * 1000));
  }
  if (limits.max_cost_usd !== undefined) {
    const max = limits.max_cost_usd;
    const names = (ctx.gpus ?? []).map((g) => g.name);
    timers.push(
      setInterval(() => {
        const cost = attemptCostUsd((Date.now() - started) / 1000, names);
        if (cost >= max) trip("max_cost_usd", `max_cost_usd ${max} reached (≈ $${cost.toFixed(4)} at list prices)`);
      }, COST_CHECK_MS),
    );
  }
  let exit: ProcessExit;
  try {
    exit = await proc.exited;
  } finally {
    for (const t of timers) clearTimeout(t);
    ctx.signal.removeEventListener("abort", onAbort);
  }
  // A checkpoint written during the grace period still gets uploaded.
  await uploader?.close();

  const gpu_s: Record<string, number> = {};
  for (const g of ctx.gpus ?? []) gpu_s[g.name] = (gpu_s[g.name] ?? 0) + exit.wallS;
  ctx.addUsage({ wall_s: exit.wallS, cpu_s: exit.cpuS, gpu_s });
  ctx.annotate({
    process: {
      argv,
      pid: proc.pid,
      exit: { code: exit.code, signal: exit.signal },
      killed: exit.killed,
      stop_reason: exit.stopReason ?? null,
      started_at: new Date(exit.startedAt).toISOString(),
      ended_at: new Date(exit.endedAt).toISOString(),
    },
  });
  return { exit, tail, guardrail, tokens };
}

async function readStatus(file: string, tail: string[]): Promise<TrainerStatus | null> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as TrainerStatus;
  } catch {
    // A trainer that is not the recipe may print the status line only.
    for (const line of [...tail].reverse()) if (line.startsWith(STATUS_PREFIX)) return JSON.parse(line.slice(STATUS_PREFIX.length)) as TrainerStatus;
    return null;
  }
}

/** `outputs/model/` → `outputs/model.tar` (kind `model`); the recipe's outcome → `train_summary.json`. */
async function finishOutputs(ctx: HandlerContext, status: TrainerStatus | null, spec: TrainSpec): Promise<void> {
  const modelDir = join(ctx.outputsDir, "model");
  if (existsSync(modelDir)) {
    await tar.c({ cwd: ctx.outputsDir, file: join(ctx.outputsDir, "model.tar"), portable: true }, ["model"]);
    await rm(modelDir, { recursive: true, force: true });
    ctx.setOutputKind("model.tar", "model");
  }
  if (status !== null) {
    await writeFile(join(ctx.outputsDir, "train_summary.json"), JSON.stringify({ backend: spec.backend, attempt: ctx.attempt, ...status }, null, 2) + "\n");
    ctx.setOutputKind("train_summary.json", "report");
  }
}

/** Throws the job failure of a finished trainer run, or returns for a success. */
function classify(run: TrainerRun, status: TrainerStatus | null, backend: TrainSpec["backend"], limits: Limits): void {
  const { exit, tail } = run;
  const exitInfo = { code: exit.code, signal: exit.signal };
  const lastLines = tail.length > 0 ? `; last ${tail.length} log lines:\n${tail.join("\n")}` : "";
  if (exit.spawnError) {
    throw new JobFailure(backend === "torch" ? "backend_unavailable" : "spawn_failed", `cannot start the trainer: ${exit.spawnError.message}${backend === "torch" ? " (set NEXA_PYTHON to a Python with torch and transformers)" : ""}`, {
      retryable: false,
      details: { exit: exitInfo },
    });
  }
  const guardrail = run.guardrail ?? guardrailOf(exit.stopReason);
  if (guardrail !== null) {
    const which = guardrail;
    const limit = limits[which];
    const at = status?.step !== undefined ? `; final checkpoint at step ${status.step}` : "";
    throw new JobFailure(`guardrail_${which}`, `stopped by ${which} ${limit ?? ""}${at}${exit.killed ? " (killed after the grace period)" : ""}`, {
      kind: "guardrail",
      retryable: false,
      details: { exit: exitInfo, step: status?.step ?? null, tokens: run.tokens },
    });
  }
  if (exit.stopReason !== undefined) throw stopped(exit.stopReason, exitInfo);
  if (exit.code === 0) {
    if (status?.status === "stopped") {
      // SIGTERM from outside the worker (not a stop we asked for): the run is unfinished; a new attempt resumes it.
      throw new JobFailure("trainer_stopped", `the trainer stopped early at step ${status.step ?? "?"} (SIGTERM from outside the worker)${lastLines}`, { retryable: true, details: { exit: exitInfo } });
    }
    return;
  }
  const how = exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal ?? "a signal"}`;
  if (status?.status === "failed" && status.code !== undefined) {
    const code = status.code;
    const retryable = code === "trainer_failed";
    throw new JobFailure(code, `${status.message ?? code} (trainer ${how})${lastLines}`, { retryable, details: { exit: exitInfo } });
  }
  const oom = exit.signal === "SIGKILL" || tail.some((l) => /out of memory|OutOfMemoryError|CUDA error: out of memory/i.test(l));
  if (oom) {
    throw new JobFailure("oom", `the trainer ran out of memory (${how}${exit.signal === "SIGKILL" ? ", most likely by the kernel's OOM killer" : ""})${lastLines}`, { retryable: false, details: { exit: exitInfo } });
  }
  throw new JobFailure("trainer_failed", `the trainer ${how}${lastLines}`, { retryable: true, details: { exit: exitInfo } });
}

/** The runtime's own `max_runtime_s` timer stops the process with this reason. */
function guardrailOf(reason: string | undefined): TrainerRun["guardrail"] {
  return reason === "guardrail_max_runtime_s" ? "max_runtime_s" : null;
}

function stopped(reason: string, exit?: { code: number | null; signal: string | null }): JobFailure {
  const kind = reason === "canceled" ? "canceled" : reason === "preempted" || reason === "lease_lost" ? "preempted" : "error";
  return new JobFailure(reason, `stopped: ${reason}`, { kind, retryable: kind !== "canceled", details: exit ? { exit } : undefined });
}
