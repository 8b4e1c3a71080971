import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "node:net";
import { startServer } from "@nexa/server";
import { ForgeClient } from "@nexa/sdk";
import { JobFailure, WorkerAgent, type HandlerRegistry } from "@nexa/worker";
import { startForge, waitDone, type Forge } from "./helpers.js";

const sha = (s: string | Buffer) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

let forge: Forge;
beforeAll(async () => {
  forge = await startForge();
});
afterAll(async () => {
  await forge?.close();
});

describe("WorkerAgent against a real control plane", () => {
  it("runs a command job: inputs from the cache, logs, metrics, outputs as artifacts, manifest, usage", async () => {
    const { admin } = forge;
    const { agent, workdir } = await forge.worker({ labels: { zone: "test" } });
    const a = await admin.putBlob(new TextEncoder().encode("alpha\n"), { mediaType: "text/plain" });
    const bBlob = await admin.putBlob(new TextEncoder().encode("beta\n"));
    const bArt = await admin.createArtifact({ name: "inputs/b", kind: "dataset", digest: bBlob.digest });

    const script = [
      'cat "$NEXA_INPUTS_DIR/a.txt" "$NEXA_INPUTS_DIR/nested/b.txt"',
      'echo "mode=$(stat -c %a "$NEXA_INPUTS_DIR/a.txt")"',
      'mkdir -p "$NEXA_OUTPUTS_DIR/sub"',
      'printf result > "$NEXA_OUTPUTS_DIR/result.txt"',
      `printf '{"ok":true}' > "$NEXA_OUTPUTS_DIR/sub/data.json"`,
      `for i in 1 2 3; do echo "{\\"step\\":$i,\\"loss\\":$((10 - i))}" >> "$NEXA_METRICS_FILE"; done`,
      "echo to-stderr >&2",
    ].join("; ");
    const submitted = await admin.submitJob({
      type: "command",
      name: "e2e-basic",
      spec: { argv: ["sh", "-c", script], inputs: { "a.txt": a.digest, "nested/b.txt": bArt.id } },
      requirements: { labels: { zone: "test" } },
    });
    const job = await waitDone(admin, submitted.id);
    expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
    expect(Object.keys(job.outputs ?? {}).sort()).toEqual(["result.txt", "sub/data.json"]);
    const result = job.outputs?.["result.txt"];
    expect(result).toMatchObject({ digest: sha("result"), size: 6, media_type: "text/plain" });
    expect(job.outputs?.["sub/data.json"]).toMatchObject({ digest: sha('{"ok":true}'), media_type: "application/json" });

    const art = await admin.getArtifact(result?.artifact_id ?? "missing");
    expect(art).toMatchObject({ name: "e2e-basic/result.txt", kind: "other", digest: sha("result"), producer_job_id: job.id });
    expect(art.parents).toEqual([bArt.id]);
    expect(await (await admin.getBlob(art.digest)).text()).toBe("result");

    const logs = await admin.getLogs(job.id);
    const lines = logs.map((l) => `${l.stream}:${l.line}`);
    expect(lines).toEqual(expect.arrayContaining(["stdout:alpha", "stdout:beta", "stdout:mode=444", "stderr:to-stderr"]));
    expect(logs.every((l) => l.attempt === 1)).toBe(true);

    const metrics = await admin.getMetrics(job.id);
    expect(metrics.series.loss?.map((p) => [p.step, p.value])).toEqual([
      [1, 9],
      [2, 8],
      [3, 7],
    ]);

    const manifest = await admin.getManifest(job.id);
    const m = manifest.attempts.at(-1);
    expect(m?.inputs).toEqual({ "a.txt": a.digest, "nested/b.txt": bBlob.digest });
    expect(m?.outputs["result.txt"]?.digest).toBe(sha("result"));
    expect(m?.worker.cpus).toBeGreaterThan(0);
    expect(m?.worker.cpu_model).toBeTruthy();
    expect(m?.worker.id).toBe(agent.id);
    expect(m?.software.node).toBe(process.versions.node);
    expect(m?.software.forge).toBe("0.1.0");
    expect(m?.exit).toEqual({ status: "succeeded", code: 0, signal: null });
    expect(m?.timings.claimed_at).toBeTruthy();
    expect(job.usage.wall_s).toBeGreaterThan(0);

    // Inputs came through the worker's digest cache, stored under their digest.
    const cached = join(workdir, "cache", "sha256", a.digest.slice("sha256:".length));
    expect(await readFile(cached, "utf8")).toBe("alpha\n");
    expect((await stat(cached)).mode & 0o777).toBe(0o444);
    // The attempt's workspace is gone.
    await expect(stat(join(workdir, `${job.id}-1`))).rejects.toThrow(/ENOENT/);
    await agent.stop();
  });

  it("cancel of a running job: SIGTERM, then SIGKILL after the grace period", async () => {
    const { admin } = forge;
    const { agent } = await forge.worker({ name: "cancel-worker" });
    const job = await admin.submitJob({
      type: "command",
      spec: { argv: ["sh", "-c", "trap 'echo got-term' TERM; echo \"pid=$$\"; while :; do sleep 0.1; done"] },
      limits: { grace_s: 1 },
    });
    let pid = 0;
    for await (const l of admin.followLogs(job.id)) {
      if (l.line.startsWith("pid=")) {
        pid = Number(l.line.slice(4));
        break;
      }
    }
    const t0 = Date.now();
    await admin.cancelJob(job.id);
    const done = await waitDone(admin, job.id);
    const took = Date.now() - t0;
    expect(done.status).toBe("canceled");
    const lines = (await admin.getLogs(job.id)).map((l) => l.line);
    expect(lines).toContain("got-term"); // it saw SIGTERM and carried on…
    expect(lines.some((l) => l.startsWith("stopping (canceled)"))).toBe(true);
    const m = (await admin.getManifest(job.id)).attempts.at(-1);
    expect(m?.exit).toEqual({ status: "canceled", code: null, signal: "SIGKILL" }); // …so the grace period ended in SIGKILL
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(6000);
    expect(() => process.kill(pid, 0)).toThrow();
    await agent.stop();
  });

  it("a failing command spends the failure budget and reports exit_nonzero with the log tail; max_runtime_s is a guardrail", async () => {
    const { admin } = forge;
    const { agent } = await forge.worker({ name: "fail-worker" });
    const failing = await admin.submitJob({
      type: "command",
      spec: { argv: ["sh", "-c", 'echo "attempt $NEXA_ATTEMPT"; echo boom >&2; exit 4'] },
      retry: { max_attempts: 2, backoff_s: 0 },
    });
    const slow = await admin.submitJob({ type: "command", spec: { argv: ["sleep", "30"] }, limits: { max_runtime_s: 0.5, grace_s: 1 } });
    const [f, g] = await Promise.all([waitDone(admin, failing.id), waitDone(admin, slow.id)]);
    expect(f.status).toBe("failed");
    expect(f.attempt).toBe(2);
    expect(f.error?.code).toBe("exit_nonzero");
    expect(f.error?.message).toMatch(/exited with code 4; last 2 log lines:\nattempt 2\nboom/);
    expect(g.status).toBe("failed");
    expect(g.attempt).toBe(1);
    expect(g.error?.code).toBe("guardrail_max_runtime_s");
    await agent.stop();
  });

  it("assigns discovered GPUs to jobs (CUDA_VISIBLE_DEVICES) and meters GPU-seconds by type", async () => {
    const { admin } = forge;
    const bin = join(forge.home, "fake-bin");
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, "nvidia-smi"), "#!/bin/sh\nprintf '0, NVIDIA A100-SXM4-40GB, 40960, 535.104.05\\n1, NVIDIA A100-SXM4-40GB, 40960, 535.104.05\\n'\n");
    await chmod(join(bin, "nvidia-smi"), 0o755);
    const { agent } = await forge.worker({
      name: "gpu-worker",
      gpus: "auto",
      discoverGpus: { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` } },
    });
    const workers = await admin.listWorkers();
    expect(workers.find((w) => w.id === agent.id)?.capabilities.gpus.map((g) => g.name)).toEqual(["NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB"]);
    const job = await admin.submitJob({
      type: "command",
      spec: { argv: ["sh", "-c", 'sleep 0.2; echo "cuda=$CUDA_VISIBLE_DEVICES"'] },
      requirements: { gpus: 1, gpu_type: "A100" },
    });
    const done = await waitDone(admin, job.id);
    expect(done.status).toBe("succeeded");
    expect((await admin.getLogs(job.id)).map((l) => l.line)).toContain("cuda=0");
    expect(done.usage.gpu_s["NVIDIA A100-SXM4-40GB"]).toBeGreaterThan(0.15);
    const m = (await admin.getManifest(job.id)).attempts.at(-1);
    expect(m?.worker.driver).toBe("535.104.05");
    await agent.stop();
  });

  it("ships thousands of log lines in order, in batches", async () => {
    const { admin } = forge;
    const { agent } = await forge.worker({ name: "chatty-worker" });
    const job = await admin.submitJob({ type: "command", spec: { argv: ["seq", "1", "3000"] } });
    expect((await waitDone(admin, job.id)).status).toBe("succeeded");
    const logs = (await admin.getLogs(job.id)).filter((l) => l.stream === "stdout");
    expect(logs.map((l) => Number(l.line))).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    await agent.stop();
  });

  it("queues GPU jobs on a worker with more slots than free GPUs", async () => {
    const { admin } = forge;
    const bin = join(forge.home, "fake-bin-1gpu");
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, "nvidia-smi"), "#!/bin/sh\nprintf '0, NVIDIA L4, 23034, 550.54.15\\n'\n");
    await chmod(join(bin, "nvidia-smi"), 0o755);
    const { agent } = await forge.worker({
      name: "one-gpu-worker",
      // The server does not wake a waiting claim when a job frees GPUs (reported), so the second
      // job is only seen when the long-poll comes round again: keep it short here.
      claimWaitS: 1,
      gpus: "auto",
      concurrency: 2,
      discoverGpus: { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` } },
    });
    const spec = { argv: ["sh", "-c", 'echo "start $(date +%s%N) cuda=$CUDA_VISIBLE_DEVICES"; sleep 0.4; echo "end $(date +%s%N)"'] };
    const jobs = await Promise.all([1, 2].map(() => admin.submitJob({ type: "command", spec, requirements: { gpus: 1 } })));
    const done = await Promise.all(jobs.map((j) => waitDone(admin, j.id)));
    expect(done.map((d) => d.status)).toEqual(["succeeded", "succeeded"]);
    const spans = await Promise.all(
      jobs.map(async (j) => {
        const lines = (await admin.getLogs(j.id)).map((l) => l.line);
        const at = (w: string) => Number(lines.find((l) => l.startsWith(w))?.split(" ")[1]);
        expect(lines.find((l) => l.startsWith("start"))).toMatch(/cuda=0$/);
        return [at("start"), at("end")] as const;
      }),
    );
    const [a, b] = spans.sort((x, y) => x[0] - y[0]);
    expect(b?.[0]).toBeGreaterThanOrEqual(a?.[1] ?? Infinity); // the second started after the first released the GPU
    await agent.stop();
  });

  it("runs in-process handlers from a registry, up to `concurrency` at once, with declared output kinds", async () => {
    const { admin } = forge;
    let inFlight = 0;
    let peak = 0;
    const handlers: HandlerRegistry = {
      audit: async (ctx) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        try {
          ctx.log(`auditing ${ctx.job.id}`);
          ctx.metric("score", 0, 0.75);
          await new Promise((r) => setTimeout(r, 400));
          await writeFile(join(ctx.outputsDir, "report.json"), JSON.stringify({ job: ctx.job.id }));
          ctx.setOutputKind("report.json", "report");
          ctx.addUsage({ tokens_in: 10, tokens_out: 5 });
          if (ctx.job.name === "bad") throw new JobFailure("judge_refused", "the judge refused", { retryable: false });
        } finally {
          inFlight--;
        }
      },
    };
    const { agent } = await forge.worker({ name: "inproc-worker", handlers, concurrency: 2, accepts: ["audit"] });
    const spec = { dataset: "sha256:" + "0".repeat(64) };
    const submit = (name: string) => admin.submitJob({ type: "audit", name, spec });
    const jobs = await Promise.all([submit("a1"), submit("a2"), submit("a3"), submit("bad")]);
    const done = await Promise.all(jobs.map((j) => waitDone(admin, j.id)));
    expect(peak).toBe(2);
    for (const d of done.slice(0, 3)) {
      expect(d.status).toBe("succeeded");
      const art = await admin.getArtifact(d.outputs?.["report.json"]?.artifact_id ?? "");
      expect(art.kind).toBe("report");
      expect(d.usage.tokens_in).toBe(10);
    }
    expect(done[3]?.status).toBe("failed");
    expect(done[3]?.error?.code).toBe("judge_refused");
    await agent.stop();
  });

  it("uploads checkpoints as they complete, keeps the last k on disk, and restores the newest on the retry", async () => {
    const { admin } = forge;
    const { agent } = await forge.worker({ name: "ckpt-worker" });
    const c = "$NEXA_CHECKPOINT_DIR";
    const script = [
      `if [ "$NEXA_RESUME" = 1 ]; then echo "attempt $NEXA_ATTEMPT resumed: $(ls ${c} | tr '\\n' ' ')$(cat ${c}/step-4/weights)"; exit 0; fi`,
      `for s in 1 2 3 4; do mkdir -p ${c}/step-$s; echo "w$s" > ${c}/step-$s/weights; touch ${c}/step-$s/COMPLETE; done`,
      // Wait (bounded by max_runtime_s) until the worker has pruned all but the last two.
      `while [ -d ${c}/step-1 ] || [ -d ${c}/step-2 ]; do sleep 0.05; done`,
      `echo "kept: $(ls ${c} | tr '\\n' ' ')"`,
      "exit 1",
    ].join("\n");
    const job = await admin.submitJob({
      type: "command",
      spec: { argv: ["sh", "-c", script], checkpoint: { keep_last: 2 } },
      retry: { max_attempts: 2, backoff_s: 0 },
      limits: { max_runtime_s: 15 },
    });
    const done = await waitDone(admin, job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.attempt).toBe(2);
    const lines = (await admin.getLogs(job.id)).map((l) => `${l.attempt}:${l.line}`);
    expect(lines).toContain("1:kept: step-3 step-4 ");
    expect(lines).toContain("2:attempt 2 resumed: step-4 w4");
    const arts = await admin.listArtifacts({ name: `${job.id}/checkpoint` });
    expect(arts.items.map((a) => a.metadata.step).sort()).toEqual([1, 2, 3, 4]);
    expect(new Set(arts.items.map((a) => a.media_type))).toEqual(new Set(["application/x-tar"]));
    await agent.stop();
  });

  // A checkpoint is what the next attempt resumes from: when it is recorded, the metrics the
  // process wrote before it must already be with the control plane, or a worker killed right
  // then loses steps that no attempt reports again (the attempt resuming from it starts after).
  it("a checkpoint is recorded only once the metrics written before it are shipped", async () => {
    const { admin } = forge;
    const { agent } = await forge.worker({ name: "ckpt-metrics" });
    const c = "$NEXA_CHECKPOINT_DIR";
    const script = [
      `echo '{"step":7,"loss":0.5}' >> "$NEXA_METRICS_FILE"`,
      `mkdir -p ${c}/step-7 && echo w > ${c}/step-7/weights && touch ${c}/step-7/COMPLETE`,
      "sleep 30",
    ].join("; ");
    const job = await admin.submitJob({ type: "command", spec: { argv: ["sh", "-c", script] }, retry: { max_attempts: 1 } });
    // Poll as fast as the API answers: the first moment the checkpoint exists, the point must too.
    const deadline = Date.now() + 20_000;
    let arts = await admin.listArtifacts({ name: `${job.id}/checkpoint` });
    while (arts.items.length === 0 && Date.now() < deadline) arts = await admin.listArtifacts({ name: `${job.id}/checkpoint` });
    const steps = ((await admin.getMetrics(job.id)).series.loss ?? []).map((p) => p.step);
    expect(arts.items.map((a) => a.metadata.step)).toEqual([7]);
    expect(steps).toEqual([7]);
    await admin.cancelJob(job.id);
    await waitDone(admin, job.id);
    await agent.stop();
  });

  it("a lost lease stops the process and is never completed; the job runs again", async () => {
    const { admin } = forge;
    const { agent, log } = await forge.worker({ name: "dup-name" });
    const job = await admin.submitJob({
      type: "command",
      spec: { argv: ["sh", "-c", 'echo "pid=$$ attempt=$NEXA_ATTEMPT"; if [ "$NEXA_ATTEMPT" = 1 ]; then sleep 30; fi; echo finished'] },
    });
    let pid = 0;
    for await (const l of admin.followLogs(job.id)) {
      if (l.line.startsWith("pid=")) {
        pid = Number(l.line.split(" ")[0]?.slice(4));
        break;
      }
    }
    // Another registration under the same name (a restarted machine) takes the old leases away at once.
    const impostor = forge.admin.withKey(forge.workerKey);
    await impostor.registerWorker({ name: "dup-name", capabilities: { cpus: 1, memory_gb: 1 }, accepts: ["command"] });
    const done = await waitDone(admin, job.id);
    expect(done.status).toBe("succeeded");
    expect(done.attempt).toBe(2);
    expect(log.some((l) => l.startsWith(`lease of ${job.id}#1 lost`))).toBe(true);
    expect(() => process.kill(pid, 0)).toThrow();
    const lines = (await admin.getLogs(job.id)).filter((l) => l.attempt === 1).map((l) => l.line);
    expect(lines).not.toContain("finished");
    await agent.stop();
  });

  it("stops any handler at limits.max_runtime_s and keeps its outputs (guardrail)", async () => {
    const { admin } = forge;
    let reason: unknown;
    const handlers: HandlerRegistry = {
      audit: async (ctx) => {
        await writeFile(join(ctx.outputsDir, "partial.jsonl"), '{"n":1}\n');
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        reason = ctx.signal.reason;
        throw new JobFailure("interrupted", "stopped by the runtime");
      },
    };
    const { agent } = await forge.worker({ name: "guarded-worker", handlers, accepts: ["audit"] });
    const job = await admin.submitJob({ type: "audit", spec: { dataset: `sha256:${"3".repeat(64)}` }, limits: { max_runtime_s: 0.3 } });
    const done = await waitDone(admin, job.id);
    expect(reason).toBe("guardrail_max_runtime_s");
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("guardrail_max_runtime_s");
    expect(done.outputs?.["partial.jsonl"]?.media_type).toBe("application/x-ndjson");
    await agent.stop();
  });

  it("meters the worker's CPU time for an in-process handler when it has the only slot", async () => {
    const { admin } = forge;
    const handlers: HandlerRegistry = {
      audit: (ctx) => {
        const start = process.cpuUsage();
        for (;;) {
          const d = process.cpuUsage(start);
          if (d.user + d.system > 300_000) break;
        }
        ctx.log("burned");
        return Promise.resolve();
      },
    };
    const { agent } = await forge.worker({ name: "cpu-worker", handlers, accepts: ["audit"] });
    const job = await admin.submitJob({ type: "audit", spec: { dataset: `sha256:${"2".repeat(64)}` } });
    const done = await waitDone(admin, job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.usage.cpu_s).toBeGreaterThanOrEqual(0.29);
    expect(done.usage.cpu_s).toBeLessThan(5);
    await agent.stop();
  });
});

describe("a worker that starts before its control plane", () => {
  it("waits, registers once the server is up, and runs jobs", async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, "127.0.0.1", () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
      });
    });
    const home = join(forge.home, "late-server");
    // First start creates the keys; then the server goes away before the worker starts.
    const first = await startServer({ home, port, host: "127.0.0.1", heartbeatIntervalS: 0.5 });
    const admin = new ForgeClient({ url: first.url, apiKey: first.adminKey ?? "" });
    const key = (await admin.createKey({ name: "late", scopes: ["worker"] })).key ?? "";
    await first.close();

    const log: string[] = [];
    const agent = new WorkerAgent({ url: first.url, apiKey: key, name: "early-worker", gpus: 0, workdir: join(home, "work"), claimWaitS: 5, log: (l) => log.push(l) });
    const starting = agent.start();
    while (!log.some((l) => l.startsWith("cannot register yet"))) await new Promise((r) => setTimeout(r, 50));
    const second = await startServer({ home, port, host: "127.0.0.1", heartbeatIntervalS: 0.5 });
    try {
      await starting;
      const job = await admin.submitJob({ type: "command", spec: { argv: ["true"] } });
      expect((await waitDone(admin, job.id)).status).toBe("succeeded");
    } finally {
      await agent.stop();
      await second.close();
    }
  });

  it("rides out a control-plane restart mid-job: logs are kept and the completion goes through", async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, "127.0.0.1", () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
      });
    });
    const home = join(forge.home, "restarting-server");
    let server = await startServer({ home, port, host: "127.0.0.1", heartbeatIntervalS: 0.5 });
    const admin = new ForgeClient({ url: server.url, apiKey: server.adminKey ?? "" });
    const key = (await admin.createKey({ name: "restart", scopes: ["worker"] })).key ?? "";
    const agent = new WorkerAgent({ url: server.url, apiKey: key, name: "steady-worker", gpus: 0, workdir: join(home, "work"), claimWaitS: 5 });
    await agent.start();
    try {
      const job = await admin.submitJob({
        type: "command",
        spec: { argv: ["sh", "-c", 'for i in $(seq 1 30); do echo "line $i"; sleep 0.05; done; echo ok > "$NEXA_OUTPUTS_DIR/done.txt"'] },
      });
      for await (const l of admin.followLogs(job.id)) if (l.line === "line 3") break;
      await server.close();
      await new Promise((r) => setTimeout(r, 1000)); // the job keeps running and logging meanwhile
      server = await startServer({ home, port, host: "127.0.0.1", heartbeatIntervalS: 0.5 });
      const done = await waitDone(admin, job.id);
      expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
      expect(done.attempt).toBe(1);
      expect(Object.keys(done.outputs ?? {})).toEqual(["done.txt"]);
      const lines = (await admin.getLogs(job.id)).map((l) => l.line).filter((l) => l.startsWith("line "));
      expect(new Set(lines)).toEqual(new Set(Array.from({ length: 30 }, (_, i) => `line ${i + 1}`)));
    } finally {
      await agent.stop();
      await server.close();
    }
  });

  it("fails at once on a key the server refuses", async () => {
    const agent = new WorkerAgent({ url: forge.url, apiKey: "nxk_not_a_real_key", gpus: 0, workdir: join(forge.home, "work-badkey") });
    await expect(agent.start()).rejects.toMatchObject({ code: "unauthenticated" });
  });
});

describe("workdir ownership", () => {
  it("refuses a second worker on a workdir that is in use", async () => {
    const workdir = join(forge.home, "work-shared");
    const { agent } = await forge.worker({ name: "owner", workdir });
    const second = new WorkerAgent({ url: forge.url, apiKey: forge.workerKey, name: "intruder", gpus: 0, workdir });
    await expect(second.start()).rejects.toThrow(/workdir .* is in use/);
    await agent.stop();
    // Released on stop: the next worker may take it.
    const { agent: next } = await forge.worker({ name: "successor", workdir });
    await next.stop();
  });
});
