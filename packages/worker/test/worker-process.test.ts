import { spawn, type ChildProcess } from "node:child_process";
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerAgent } from "@nexa/worker";
import { bundleDir, bundleEntry } from "./bundle.js";
import { startForge, waitDone, type Forge } from "./helpers.js";

// Whole workers as child processes, so they can be killed with SIGKILL or stopped with SIGTERM.
let forge: Forge;
let workerMain: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  workerMain = await bundleEntry(fileURLToPath(new URL("./fixtures/worker-main.ts", import.meta.url)), bundleDir());
  forge = await startForge({ leaseTtlS: 2, heartbeatIntervalS: 0.5 });
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await forge?.close();
  await rm(bundleDir(), { recursive: true, force: true });
});

interface ChildWorker {
  proc: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function childWorker(name: string, workdir: string): Promise<ChildWorker> {
  const proc = spawn(process.execPath, [workerMain], {
    env: { ...process.env, NEXA_URL: forge.url, NEXA_API_KEY: forge.workerKey, WORKER_NAME: name, WORKER_DIR: workdir, WORKER_GRACE_MS: "3000" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    let buf = "";
    proc.stdout?.on("data", (b: Buffer) => {
      buf += b.toString();
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      output.push(...lines);
      if (lines.includes("READY")) resolve();
    });
    proc.stderr?.on("data", (b: Buffer) => output.push(`stderr: ${b.toString()}`));
    void exited.then(({ code }) => reject(new Error(`worker ${name} exited (${code}) before it was ready:\n${output.join("\n")}`)));
  });
  return { proc, output, exited };
}

/** Resolves once the job has logged `line` (following its log stream). */
async function logged(jobId: string, line: string): Promise<number> {
  for await (const l of forge.admin.followLogs(jobId)) if (l.line.startsWith(line)) return l.attempt;
  throw new Error(`job ${jobId} ended without logging ${line}`);
}

async function running(pid: number): Promise<boolean> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

describe("workers as processes", () => {
  it("a worker killed with SIGKILL mid-job: the job is re-queued after the lease TTL and finished by another worker", async () => {
    const workdir = join(forge.home, "work-killed");
    const a = await childWorker("doomed", workdir);
    const job = await forge.admin.submitJob({
      type: "command",
      spec: {
        argv: ["sh", "-c", 'echo "pid=$$"; if [ "$NEXA_ATTEMPT" = 1 ]; then sleep 60; fi; echo "attempt $NEXA_ATTEMPT" > "$NEXA_OUTPUTS_DIR/who.txt"'],
      },
      retry: { max_attempts: 1 },
    });
    let pid = 0;
    for await (const l of forge.admin.followLogs(job.id)) {
      if (l.line.startsWith("pid=")) {
        pid = Number(l.line.slice(4));
        break;
      }
    }
    expect(await running(pid)).toBe(true);
    const killedAt = Date.now();
    a.proc.kill("SIGKILL");
    await a.exited;
    // The job's process group outlives its worker (it is detached), until a worker takes over the workdir.
    expect(await running(pid)).toBe(true);

    const b = await forge.worker({ name: "rescuer", workdir });
    expect(await running(pid)).toBe(false);
    const done = await waitDone(forge.admin, job.id, 20_000);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.attempt).toBe(2);
    expect(done.worker_id).toBe(b.agent.id);
    // Re-queued only once the 2 s lease ran out, not at once.
    expect(Date.parse(done.finished_at ?? "") - killedAt).toBeGreaterThan(1500);
    const out = done.outputs?.["who.txt"];
    expect(await (await forge.admin.getBlob(out?.digest ?? "")).text()).toBe("attempt 2\n");
    // The dead worker's lease is fenced off: a late completion with it changes nothing.
    const deadLease = /claimed command job \S+#1 under lease (\S+)/.exec(a.output.join("\n"))?.[1];
    expect(deadLease).toBeDefined();
    const late = forge.admin.withKey(forge.workerKey);
    await expect(late.complete(deadLease ?? "", { outputs: {} })).rejects.toMatchObject({ code: "lease_lost" });
    expect((await forge.admin.getJob(job.id)).outputs?.["who.txt"]?.digest).toBe(out?.digest);
    await b.agent.stop();
  });

  it("SIGTERM to a worker preempts its job without spending the failure budget; the final checkpoint is restored on the next attempt", async () => {
    const c = "$NEXA_CHECKPOINT_DIR";
    const script = [
      `if [ "$NEXA_RESUME" = 1 ]; then echo "resumed from $(cat ${c}/*/state) with $(ls ${c} | tr '\\n' ' ')"; echo "attempt=$NEXA_ATTEMPT" > "$NEXA_OUTPUTS_DIR/final.txt"; exit 0; fi`,
      `trap 'mkdir -p ${c}/step-5 && echo 5 > ${c}/step-5/state && touch ${c}/step-5/COMPLETE && echo saved-on-term; exit 143' TERM`,
      `for s in 1 2 3; do mkdir -p ${c}/step-$s; echo $s > ${c}/step-$s/state; touch ${c}/step-$s/COMPLETE; done`,
      "echo started",
      "while :; do sleep 0.1; done",
    ].join("\n");
    const w = await childWorker("spot-1", join(forge.home, "work-spot"));
    const job = await forge.admin.submitJob({
      type: "command",
      spec: { argv: ["sh", "-c", script], checkpoint: { keep_last: 2 } },
      retry: { max_attempts: 1 },
    });
    expect(await logged(job.id, "started")).toBe(1);
    w.proc.kill("SIGTERM");
    const exit = await w.exited;
    expect(exit.code, w.output.join("\n")).toBe(0);
    expect(w.output).toContain("STOPPED");

    const requeued = await forge.admin.getJob(job.id);
    expect(requeued.status).toBe("queued");
    const b = await forge.worker({ name: "on-demand-1" });
    const done = await waitDone(forge.admin, job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.attempt).toBe(2);
    const logs = await forge.admin.getLogs(job.id);
    expect(logs.filter((l) => l.attempt === 1).map((l) => l.line)).toContain("saved-on-term");
    expect(logs.filter((l) => l.attempt === 2).map((l) => l.line)).toContain("resumed from 5 with step-5 ");
    expect(await (await forge.admin.getBlob(done.outputs?.["final.txt"]?.digest ?? "")).text()).toBe("attempt=2\n");

    const ckpts = await forge.admin.listArtifacts({ name: `${job.id}/checkpoint` });
    expect(ckpts.items.map((a) => a.metadata).sort((x, y) => Number(x.step) - Number(y.step))).toEqual([
      { name: "step-1", step: 1 },
      { name: "step-2", step: 2 },
      { name: "step-3", step: 3 },
      { name: "step-5", step: 5 },
    ]);
    expect(ckpts.items.every((a) => a.kind === "checkpoint" && a.producer_job_id === job.id)).toBe(true);
    const manifest = await forge.admin.getManifest(job.id);
    expect(manifest.attempts.map((m) => m.exit?.status)).toEqual(["preempted", "succeeded"]);
    await b.agent.stop();
    await expect(stat(join(forge.home, "work-spot", "worker.lock"))).rejects.toThrow(/ENOENT/);
  });

  it("a second worker cannot take a workdir held by a live worker process", async () => {
    const workdir = join(forge.home, "work-held");
    const a = await childWorker("holder", workdir);
    const intruder = new WorkerAgent({ url: forge.url, apiKey: forge.workerKey, name: "intruder", gpus: 0, workdir });
    await expect(intruder.start()).rejects.toThrow(new RegExp(`in use by the worker with pid ${a.proc.pid}`));
    a.proc.kill("SIGTERM");
    expect((await a.exited).code).toBe(0);
  });
});
