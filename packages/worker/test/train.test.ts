import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tar from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TrainSpec } from "@nexa/core";
import { builtinHandlers } from "@nexa/worker";
import { axolotlConfig, trainHandler } from "../src/handlers/train.js";
import { build } from "vite";
import { bundleDir } from "./bundle.js";
import { startForge, waitDone, type Forge } from "./helpers.js";

// Real training runs: the torch recipe with the Python of NEXA_PYTHON (CI: .venv from
// python/requirements-test.txt). Without it the torch cases are skipped, with a message.
const PYTHON = process.env.NEXA_PYTHON;
const fixtures = fileURLToPath(new URL("./fixtures/train/", import.meta.url));
const repo = fileURLToPath(new URL("../../..", import.meta.url));
if (!PYTHON) console.warn("train.test.ts: NEXA_PYTHON is unset — skipping the torch training cases (set it to a Python with torch, transformers, numpy, safetensors)");

let forge: Forge;
let workerMain: string;
let corpus: string;
let noText: string;
let tokenizer: string;
const children: ChildProcess[] = [];

/** A tiny GPT-2 (2 layers, width 32, the fixture tokenizer's 8,192 tokens): ~0.3 M parameters. */
const tinyModel = {
  config: { model_type: "gpt2", n_layer: 2, n_embd: 32, n_head: 2, vocab_size: 8192, n_positions: 64, bos_token_id: 0, eos_token_id: 0 },
  precision: "fp32",
};

function trainSpec(over: Record<string, unknown> = {}, hp: Record<string, unknown> = {}) {
  return {
    dataset: corpus,
    backend: "torch",
    model: tinyModel,
    pack: { tokenizer, seq_len: 64, loss_on: "all" },
    hyperparameters: { lr: 5e-3, warmup_steps: 2, max_steps: 40, micro_batch_size: 4, checkpoint_every: 5, seed: 1, ...hp },
    // One thread: on a small shared machine, torch's thread pool only adds contention.
    env: { OMP_NUM_THREADS: "1" },
    ...over,
  };
}

beforeAll(async () => {
  forge = await startForge({ leaseTtlS: 3, heartbeatIntervalS: 0.5 });
  const put = async (file: string, mediaType: string) => (await forge.admin.putBlob(await readFile(file), { mediaType })).digest;
  corpus = await put(join(fixtures, "corpus.jsonl"), "application/x-ndjson");
  noText = await put(join(fixtures, "no-text.jsonl"), "application/x-ndjson");
  tokenizer = await put(join(fixtures, "tokenizer", "tokenizer.json"), "application/json");
  if (PYTHON) workerMain = await bundleWorker(join(fixtures, "worker-main.ts"), bundleDir());
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await forge?.close();
  await rm(bundleDir(), { recursive: true, force: true });
});

/**
 * Bundles the worker entry into one ES module (like `bundle.ts`), with CommonJS-only packages
 * (ajv, reached through the LLM handlers) bundled in: Node's ESM loader cannot take their named exports.
 */
async function bundleWorker(entry: string, outDir: string): Promise<string> {
  const pkgs = ["core", "sdk", "data", "llm", "server", "worker"];
  await build({
    configFile: false,
    logLevel: "silent",
    root: repo,
    resolve: { alias: Object.fromEntries(pkgs.map((p) => [`@nexa/${p}`, join(repo, `packages/${p}/src/index.ts`)])) },
    ssr: { noExternal: ["ajv", "ajv-formats"] },
    build: { ssr: entry, outDir, emptyOutDir: true, minify: false, target: "node20", rollupOptions: { output: { format: "es", entryFileNames: "[name].mjs" } } },
  });
  return join(outDir, "worker-main.mjs");
}

async function childWorker(name: string, workdir: string): Promise<{ proc: ChildProcess; exited: Promise<unknown> }> {
  const proc = spawn(process.execPath, [workerMain], {
    env: { ...process.env, NEXA_URL: forge.url, NEXA_API_KEY: forge.workerKey, WORKER_NAME: name, WORKER_DIR: workdir, NEXA_RECIPES_DIR: join(repo, "recipes") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  const output: string[] = [];
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  await new Promise<void>((resolve, reject) => {
    proc.stdout?.on("data", (b: Buffer) => {
      output.push(b.toString());
      if (output.join("").includes("READY\n")) resolve();
    });
    proc.stderr?.on("data", (b: Buffer) => output.push(b.toString()));
    void exited.then(() => reject(new Error(`worker ${name} exited before it was ready:\n${output.join("")}`)));
  });
  return { proc, exited };
}

const handlers = { ...builtinHandlers, train: trainHandler };

async function summaryOf(job: { outputs: Record<string, { digest: string }> | null }): Promise<Record<string, unknown>> {
  const d = job.outputs?.["train_summary.json"]?.digest;
  if (d === undefined) throw new Error(`no train_summary.json in ${JSON.stringify(job.outputs)}`);
  return JSON.parse(await (await forge.admin.getBlob(d)).text()) as Record<string, unknown>;
}

describe("train job", () => {
  it("a dataset without the text field fails with invalid_dataset before any trainer starts", async () => {
    const w = await forge.worker({ name: "bad-data", handlers });
    // preflight: false, so the worker's own data stage meets the bad dataset (preflight would refuse it at submit).
    const job = await forge.admin.submitJob({ type: "train", spec: trainSpec({ dataset: noText }), preflight: false });
    const done = await waitDone(forge.admin, job.id, 30_000);
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("invalid_dataset");
    expect(done.error?.message).toMatch(/"text"|text/);
    await w.agent.stop();
  });

  it("axolotl: writes the config from the spec, and fails clearly where axolotl is missing", async () => {
    const spec = TrainSpec.parse({ ...trainSpec({ backend: "axolotl" }), model: { weights: "/models/base", lora: { r: 8, alpha: 16 }, precision: "bf16" } });
    const yaml = axolotlConfig(spec, { dataset: "/in/data.jsonl", tokenizerDir: "/in/tok", weights: "/models/base", checkpointDir: "/ck", outputsDir: "/out", seqLen: 64 });
    expect(yaml).toContain('base_model: "/models/base"');
    expect(yaml).toContain('datasets: [{"path":"/in/data.jsonl","ds_type":"json","type":"completion","field":"text"}]');
    expect(yaml).toContain('adapter: "lora"');
    expect(yaml).toContain("lora_r: 8");
    expect(yaml).toContain("sequence_len: 64");
    expect(yaml).toContain("max_steps: 40");
    expect(yaml).toContain("bf16: true");
    expect(yaml).toContain("train_on_inputs: true");
    expect(() => axolotlConfig(TrainSpec.parse(trainSpec({ backend: "axolotl" })), { dataset: "d", tokenizerDir: null, weights: null, checkpointDir: "c", outputsDir: "o", seqLen: 64 })).toThrow(/needs model.weights/);

    const w = await forge.worker({ name: "axo", handlers });
    const job = await forge.admin.submitJob({ type: "train", spec: { ...trainSpec({ backend: "axolotl" }), model: { weights: repo, precision: "bf16" } } });
    const done = await waitDone(forge.admin, job.id, 30_000);
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("backend_unavailable");
    expect(done.error?.message).toMatch(/axolotl/);
    await w.agent.stop();
  });

  it("backend command: a trainer that exits non-zero → trainer_failed, one that runs out of memory → oom, both with its last log lines", async () => {
    const w = await forge.worker({ name: "cmd", handlers });
    const fails = await forge.admin.submitJob({ type: "train", spec: trainSpec({ backend: "command", argv: ["sh", "-c", 'echo "packed at $NEXA_PACKED_DIR"; echo "loss diverged" >&2; exit 4'] }) });
    const oom = await forge.admin.submitJob({
      type: "train",
      spec: trainSpec({ backend: "command", argv: ["sh", "-c", 'mkdir -p "$NEXA_CHECKPOINT_DIR/step-3" && touch "$NEXA_CHECKPOINT_DIR/step-3/COMPLETE"; echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" >&2; exit 1'] }),
    });
    const f = await waitDone(forge.admin, fails.id, 30_000);
    expect(f.error?.code).toBe("trainer_failed");
    expect(f.error?.message).toMatch(/exited with code 4; last 2 log lines:\npacked at \/.*packed\nloss diverged/);
    const o = await waitDone(forge.admin, oom.id, 30_000);
    expect(o.error?.code).toBe("oom");
    expect(o.error?.message).toMatch(/CUDA out of memory/);
    // Its checkpoint is kept.
    const ck = await forge.admin.listArtifacts({ name: `${oom.id}/checkpoint` });
    expect(ck.items.map((a) => a.metadata)).toEqual([{ name: "step-3", step: 3 }]);
    await w.agent.stop();
  });

  it.skipIf(!PYTHON)("a model config that does not load → invalid_model_config with the trainer's message", async () => {
    const w = await forge.worker({ name: "bad-model", handlers });
    const job = await forge.admin.submitJob({ type: "train", spec: trainSpec({ model: { config: { model_type: "gpt2", n_embd: 30, n_head: 4, vocab_size: 8192, n_positions: 64 }, precision: "fp32" } }), preflight: false });
    const done = await waitDone(forge.admin, job.id, 60_000);
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("invalid_model_config");
    expect(done.error?.message).toMatch(/model config does not load: .*(divisible|30|4)/s);
    expect(done.error?.message).toMatch(/trainer exited with code 2/);
    await w.agent.stop();
  });

  it.skipIf(!PYTHON)(
    "trains a tiny GPT on the CPU; a worker SIGKILLed mid-run → the next attempt resumes from the checkpoint and the steps continue; loss falls",
    async () => {
      const t0 = Date.now();
      const workdir = await mkdtemp(join(tmpdir(), "nexa-train-w-"));
      const a = await childWorker("spot", workdir);
      const job = await forge.admin.submitJob({ type: "train", spec: trainSpec(), retry: { max_attempts: 1 } });
      // Kill the worker once a checkpoint past step 10 is safely uploaded.
      for await (const l of forge.admin.followLogs(job.id)) if (/^uploaded checkpoint step-(1[0-9]|[2-9][0-9])\b/.test(l.line)) break;
      a.proc.kill("SIGKILL");
      await a.exited;
      const killedAt = Date.now();
      // A new worker on the same machine takes over the workdir (and kills the orphaned trainer).
      const b = await forge.worker({ name: "rescuer", workdir, handlers, graceMs: 5000 });
      const done = await waitDone(forge.admin, job.id, 150_000);
      expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
      expect(done.attempt).toBe(2);
      expect(done.worker_id).toBe(b.agent.id);

      const logs = await forge.admin.getLogs(job.id);
      const resumedLine = logs.find((l) => l.attempt === 2 && l.line.startsWith("resumed from step-"))?.line ?? "";
      const m = /^resumed from step-(\d+) at step (\d+)/.exec(resumedLine);
      expect(m, logs.filter((l) => l.attempt === 2).map((l) => l.line).join("\n")).not.toBeNull();
      const resumeStep = Number(m?.[2]);
      expect(resumeStep).toBeGreaterThanOrEqual(10);
      // The second attempt's first step is the one after the checkpoint.
      const firstStepOf2 = logs.find((l) => l.attempt === 2 && /^step \d+\/40 /.test(l.line))?.line;
      expect(firstStepOf2).toMatch(new RegExp(`^step ${resumeStep + 1}/40 `));

      const summary = await summaryOf(done);
      expect(summary.status).toBe("completed");
      expect(summary.step).toBe(40);
      const first = Number(summary.first_loss);
      const final = Number(summary.final_loss);
      // Random init over 8,192 tokens starts near ln(8192) ≈ 9.01.
      expect(first).toBeGreaterThan(8.5);
      expect(final).toBeLessThan(first - 1.5);
      const series = (await forge.admin.getMetrics(job.id)).series;
      const loss = series.loss ?? [];
      expect(loss.map((p) => p.step)).toContain(40);
      const steps = new Set(loss.map((p) => p.step));
      for (let s = 1; s <= 40; s++) expect(steps.has(s), `step ${s} reported`).toBe(true);

      // The model is one model.tar output that transformers can load.
      const model = done.outputs?.["model.tar"];
      expect(model).toBeDefined();
      const dir = await mkdtemp(join(tmpdir(), "nexa-model-"));
      const tarFile = join(dir, "model.tar");
      await writeFile(tarFile, Buffer.from(await (await forge.admin.getBlob(model?.digest ?? "")).arrayBuffer()));
      await tar.x({ file: tarFile, cwd: dir });
      expect(await readdir(join(dir, "model"))).toEqual(expect.arrayContaining(["config.json", "model.safetensors", "tokenizer.json", "nexa_model.json"]));
      const ckpts = await forge.admin.listArtifacts({ name: `${job.id}/checkpoint` });
      expect(ckpts.items.length).toBeGreaterThanOrEqual(2);
      console.log(`train.test: loss ${first.toFixed(3)} → ${final.toFixed(3)}; killed after an upload past step 10, resumed at step ${resumeStep}; ${((Date.now() - t0) / 1000).toFixed(1)} s (finished ${((Date.parse(done.finished_at ?? "") - killedAt) / 1000).toFixed(1)} s after the kill)`);
      await b.agent.stop();
      await rm(dir, { recursive: true, force: true });
      await rm(workdir, { recursive: true, force: true });
    },
    240_000,
  );

  it.skipIf(!PYTHON)(
    "max_runtime_s stops a run with a final checkpoint: guardrail_max_runtime_s, outputs and checkpoint kept",
    async () => {
      const t0 = Date.now();
      const w = await forge.worker({ name: "guarded", handlers, graceMs: 20_000 });
      const job = await forge.admin.submitJob({
        type: "train",
        spec: trainSpec({}, { max_steps: 100_000, checkpoint_every: 100_000 }),
        limits: { max_runtime_s: 15, grace_s: 20 },
      });
      const done = await waitDone(forge.admin, job.id, 120_000);
      expect(done.status).toBe("failed");
      expect(done.error?.code).toBe("guardrail_max_runtime_s");
      const summary = await summaryOf(done);
      expect(summary.status).toBe("stopped");
      const step = Number(summary.step);
      const ckpts = await forge.admin.listArtifacts({ name: `${job.id}/checkpoint` });
      // checkpoint_every is never reached: the one checkpoint is the final one, written on SIGTERM.
      expect(ckpts.items.map((a) => a.metadata)).toEqual([{ name: `step-${step}`, step }]);
      const logs = (await forge.admin.getLogs(job.id)).map((l) => l.line);
      expect(logs).toContain(`stop requested: final checkpoint at step ${step}`);
      console.log(`train.test: max_runtime_s 15 stopped the run at step ${step} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      await w.agent.stop();
    },
    150_000,
  );
});
