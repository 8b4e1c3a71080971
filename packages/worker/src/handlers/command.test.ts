import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addUsage, zeroUsage, type Gpu, type Job, type LogStream, type Usage } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobFailure, type HandlerContext } from "../handler.js";
import { commandHandler } from "./command.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "nexa-cmd-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function job(spec: Record<string, unknown>, limits: Job["limits"] = {}): Job {
  return {
    id: "job_test1",
    type: "command",
    name: null,
    status: "running",
    spec,
    priority: 0,
    requirements: {},
    limits,
    retry: { max_attempts: 1, backoff_s: 5, max_backoff_s: 600 },
    project: "default",
    attempt: 2,
    max_attempts: 1,
    created_at: new Date().toISOString(),
    started_at: new Date().toISOString(),
    finished_at: null,
    run_after: null,
    worker_id: "wrk_1",
    outputs: null,
    error: null,
    usage: zeroUsage(),
    cancel_requested: false,
    waiting_reason: null,
    workflow_run_id: null,
  };
}

/** A context built by hand, as the agent would, over real folders. */
async function context(j: Job, extra: { gpus?: Gpu[]; resumed?: boolean; graceMs?: number; signal?: AbortSignal } = {}) {
  const ws = join(root, `${j.id}-2`);
  const dirs = { inputsDir: join(ws, "inputs"), outputsDir: join(ws, "outputs"), checkpointDir: join(ws, "checkpoints") };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  const logs: { line: string; stream: LogStream }[] = [];
  const metrics: { name: string; step: number; value: number }[] = [];
  const notes: Record<string, unknown> = {};
  let usage: Usage = zeroUsage();
  const ctx: HandlerContext = {
    job: j,
    lease: { id: "lea_1", attempt: 2, expires_at: new Date().toISOString() },
    attempt: 2,
    workdir: ws,
    ...dirs,
    resumed: extra.resumed ?? false,
    signal: extra.signal ?? new AbortController().signal,
    graceMs: extra.graceMs ?? 2000,
    log: (line, stream = "stdout") => logs.push({ line, stream }),
    metric: (name, step, value) => metrics.push({ name, step, value }),
    fetchInput: () => Promise.reject(new Error("no inputs in this test")),
    secret: () => undefined,
    addUsage: (u) => {
      usage = addUsage(usage, u);
    },
    annotate: (f) => Object.assign(notes, f),
    setOutputKind: () => undefined,
    api: new ForgeClient({ url: "http://127.0.0.1:9" }),
    ...(extra.gpus ? { gpus: extra.gpus, workerHasGpus: true } : {}),
  };
  return { ctx, logs, metrics, notes, usage: () => usage, ws };
}

async function failure(p: Promise<unknown>): Promise<JobFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof JobFailure) return err;
    throw err;
  }
  throw new Error("expected the handler to fail");
}

describe("command handler", () => {
  it("runs argv under the job contract: env, outputs folder, metrics file, usage", async () => {
    const script = [
      'echo "job=$NEXA_JOB_ID attempt=$NEXA_ATTEMPT resume=$NEXA_RESUME lr=$LR key=${NEXA_API_KEY:-none} cuda=${CUDA_VISIBLE_DEVICES-unset}"',
      'echo "$NEXA_INPUTS_DIR|$NEXA_OUTPUTS_DIR|$NEXA_CHECKPOINT_DIR|$NEXA_METRICS_FILE"',
      'echo hello > "$NEXA_OUTPUTS_DIR/greeting.txt"',
      `echo '{"step":1,"loss":2.31}' >> "$NEXA_METRICS_FILE"`,
      `echo '{"step":2,"loss":1.5}' >> "$NEXA_METRICS_FILE"`,
      "echo oops >&2",
    ].join("; ");
    const { ctx, logs, metrics, usage, ws } = await context(job({ argv: ["sh", "-c", script], env: { LR: "3e-4", NEXA_JOB_ID: "spoofed" } }));
    const prev = process.env.NEXA_API_KEY;
    process.env.NEXA_API_KEY = "nxk_secret";
    try {
      const result = await commandHandler(ctx);
      expect(result).toEqual({ exit: { code: 0, signal: null } });
    } finally {
      if (prev === undefined) delete process.env.NEXA_API_KEY;
      else process.env.NEXA_API_KEY = prev;
    }
    expect(logs).toContainEqual({ line: "job=job_test1 attempt=2 resume=0 lr=3e-4 key=none cuda=unset", stream: "stdout" });
    expect(logs).toContainEqual({ line: `${ws}/inputs|${ws}/outputs|${ws}/checkpoints|${ws}/metrics.jsonl`, stream: "stdout" });
    expect(logs).toContainEqual({ line: "oops", stream: "stderr" });
    expect(await readFile(join(ws, "outputs", "greeting.txt"), "utf8")).toBe("hello\n");
    expect(metrics).toEqual([
      { name: "loss", step: 1, value: 2.31 },
      { name: "loss", step: 2, value: 1.5 },
    ]);
    expect(usage().wall_s).toBeGreaterThan(0);
    expect(usage().gpu_s).toEqual({});
  });

  it("exports assigned GPUs and meters GPU-seconds by type", async () => {
    const gpus = [
      { name: "NVIDIA H100", memory_gb: 80, index: 1 },
      { name: "NVIDIA H100", memory_gb: 80, index: 3 },
    ];
    const { ctx, logs, usage } = await context(job({ argv: ["sh", "-c", 'sleep 0.3; echo "cuda=$CUDA_VISIBLE_DEVICES resume=$NEXA_RESUME"'] }), { gpus, resumed: true });
    await commandHandler(ctx);
    expect(logs.map((l) => l.line)).toContain("cuda=1,3 resume=1");
    const wall = usage().wall_s;
    expect(wall).toBeGreaterThan(0.25);
    expect(usage().gpu_s["NVIDIA H100"]).toBeCloseTo(2 * wall, 6);
  });

  it("hides every GPU from a job that was assigned none on a GPU worker", async () => {
    const { ctx, logs } = await context(job({ argv: ["sh", "-c", 'echo "cuda=[${CUDA_VISIBLE_DEVICES-unset}]"'] }), { gpus: [] });
    await commandHandler(ctx);
    expect(logs.map((l) => l.line)).toContain("cuda=[]");
  });

  it("fails a non-zero exit with exit_nonzero and the last 20 log lines", async () => {
    const { ctx } = await context(job({ argv: ["sh", "-c", "for i in $(seq 1 30); do echo line$i; done; exit 7"] }));
    const f = await failure(commandHandler(ctx));
    expect(f.code).toBe("exit_nonzero");
    expect(f.kind).toBe("error");
    expect(f.retryable).toBe(true);
    expect(f.message).toMatch(/exited with code 7/);
    expect(f.message).toContain("line11\n");
    expect(f.message).toContain("line30");
    expect(f.message).not.toContain("line10\n");
    expect(f.details).toEqual({ exit: { code: 7, signal: null } });
  });

  it("fails a program that cannot start without retrying", async () => {
    const { ctx } = await context(job({ argv: [join(root, "missing-program")] }));
    const f = await failure(commandHandler(ctx));
    expect(f.code).toBe("spawn_failed");
    expect(f.retryable).toBe(false);
  });

  it("enforces limits.max_runtime_s: SIGTERM, grace, SIGKILL, guardrail failure", async () => {
    const { ctx, logs } = await context(job({ argv: ["sh", "-c", "trap 'echo term' TERM; while :; do sleep 0.05; done"] }, { max_runtime_s: 0.5 }), {
      graceMs: 400,
    });
    const t0 = Date.now();
    const f = await failure(commandHandler(ctx));
    const took = Date.now() - t0;
    expect(f.code).toBe("guardrail_max_runtime_s");
    expect(f.kind).toBe("guardrail");
    expect(f.retryable).toBe(false);
    expect(f.message).toMatch(/killed after the grace period/);
    expect(logs.map((l) => l.line)).toContain("term");
    expect(took).toBeGreaterThanOrEqual(850);
    expect(took).toBeLessThan(3000);
  });

  it("stops on abort with the abort's reason", async () => {
    const ctl = new AbortController();
    const { ctx, logs } = await context(job({ argv: ["sh", "-c", "echo started; sleep 30"] }), { signal: ctl.signal, graceMs: 5000 });
    const p = commandHandler(ctx);
    while (!logs.some((l) => l.line === "started")) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    ctl.abort("canceled");
    const f = await failure(p);
    expect(Date.now() - t0).toBeLessThan(2000); // sleep obeys SIGTERM: no need to wait for the grace period
    expect(f.code).toBe("canceled");
    expect(f.kind).toBe("canceled");
    expect(f.details).toEqual({ exit: { code: null, signal: "SIGTERM" } });
  });

  it("rejects a spec that is not a command spec", async () => {
    const { ctx } = await context(job({ argv: [] }));
    const f = await failure(commandHandler(ctx));
    expect(f.code).toBe("invalid_spec");
    expect(f.retryable).toBe(false);
  });
});
