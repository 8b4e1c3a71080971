import { ForgeError, type Claim } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { startServer } from "@nexa/server";
import { describe, expect, test } from "vitest";
import { BACKENDS, serverForSuite, CPU_WORKER, postgresAvailable, startTestServer } from "./helpers.js";

const HAVE_PG = await postgresAvailable();

// The same store-and-queue suite runs against every backend.
describe.each(BACKENDS)("queue on $name", (backend) => {
  const { skip, t } = serverForSuite(backend, HAVE_PG);

  test.skipIf(skip)("32 concurrent claimers over 2,000 jobs never double-claim", async () => {
    const { client } = t;
    const subs = Array.from({ length: 2000 }, (_, i) => ({ type: "command" as const, spec: { argv: ["true"] }, name: `j${i}`, project: "claims" }));
    const submitted = [];
    for (let i = 0; i < subs.length; i += 500) submitted.push(...(await client.submitJobs(subs.slice(i, i + 500))));
    const ids = new Set(submitted.map((j) => j.id));
    expect(ids.size).toBe(2000);
    // For PostgreSQL a second replica on the same database shares the claimers: SKIP LOCKED across processes' pools.
    const replica = backend.name === "postgres" ? await startServer({ home: t.home, databaseUrl: t.databaseUrl, port: 0, rateLimitRps: 0, writeCredentials: false }) : undefined;
    try {
      const clients = [client, ...(replica ? [new ForgeClient({ url: replica.url, apiKey: t.server.adminKey })] : [])];
      const seen = new Map<string, number>();
      await Promise.all(
        Array.from({ length: 32 }, async (_, i) => {
          const c = clients[i % clients.length]!;
          const w = await c.registerWorker({ name: `claimer-${i}`, capabilities: CPU_WORKER });
          for (;;) {
            const res = await c.claim(w.id, { wait_s: 0, max_jobs: 1 + (i % 4) });
            if (!res) break;
            for (const cl of res.claims) {
              seen.set(cl.job.id, (seen.get(cl.job.id) ?? 0) + 1);
              await c.complete(cl.lease.id, {});
            }
          }
        }),
      );
      const doubles = [...seen.values()].filter((n) => n > 1).length;
      expect(doubles).toBe(0);
      expect(seen.size).toBe(2000);
      expect([...seen.keys()].every((id) => ids.has(id))).toBe(true);
      const usage = await client.getUsage({ group_by: "project" });
      expect(usage.rows.find((r) => r.key === "claims")?.attempts).toBe(2000);
    } finally {
      await replica?.close();
    }
  }, 150_000); // 4,000 claims and completions over HTTP: slow on a shared 2-core box

  test.skipIf(skip)("a lease that expires re-queues its job on the preemption budget; the stale lease gets 409", async () => {
    const short = await startTestServer(backend, { leaseTtlS: 1.5, heartbeatIntervalS: 0.5 });
    const { client } = short;
    try {
    const job = await client.submitJob({ type: "command", spec: { argv: ["sleep", "1"] }, retry: { max_attempts: 1 } });
    const w1 = await client.registerWorker({ name: "doomed", capabilities: CPU_WORKER });
    const first = (await client.claim(w1.id, { wait_s: 1 }))!;
    expect(first.job.id).toBe(job.id);
    const w2 = await client.registerWorker({ name: "rescuer", capabilities: CPU_WORKER });
    const t0 = Date.now();
    // No heartbeat for w1: the lease (TTL 1.5 s) expires and the long-poll is woken by the re-queue.
    const second = (await client.claim(w2.id, { wait_s: 10 }))!;
    const waited = Date.now() - t0;
    expect(second.job.id).toBe(job.id);
    expect(second.lease.attempt).toBe(2);
    expect(waited).toBeLessThan(1500 + 1500);
    await expect(client.heartbeat(first.lease.id)).rejects.toMatchObject({ code: "lease_lost" });
    await expect(client.complete(first.lease.id, {})).rejects.toMatchObject({ code: "lease_lost" });
    await expect(client.sendLogs(first.lease.id, { lines: [{ line: "late", stream: "stdout" }] })).rejects.toMatchObject({ code: "lease_lost" });
    const done = await client.complete(second.lease.id, {});
    expect(done.status).toBe("succeeded");
    // max_attempts 1 and still succeeded: the lost lease did not spend the failure budget.
    expect(done.attempt).toBe(2);
    expect((await client.getLogs(job.id)).map((l) => l.line)).not.toContain("late");
    } finally {
      await short.close();
    }
  });

  test.skipIf(skip)("application failures back off and spend the failure budget; preemption does not", async () => {
    const { client } = t;
    const job = await client.submitJob({ type: "command", spec: { argv: ["false"] }, retry: { max_attempts: 2, backoff_s: 0.2, max_backoff_s: 0.2 } });
    const w = await client.registerWorker({ name: "failer", capabilities: CPU_WORKER });
    const take = async (): Promise<Claim> => (await client.claim(w.id, { wait_s: 5 }))!.claims.find((c) => c.job.id === job.id)!;
    let c = await take();
    let after = await client.fail(c.lease.id, { error: { code: "preempted", message: "spot reclaimed" }, kind: "preempted" });
    expect(after.status).toBe("queued");
    c = await take();
    after = await client.fail(c.lease.id, { error: { code: "exit_nonzero", message: "exit 1" } });
    expect(after.status).toBe("queued");
    c = await take();
    expect(c.lease.attempt).toBe(3);
    after = await client.fail(c.lease.id, { error: { code: "exit_nonzero", message: "exit 1 again" } });
    expect(after.status).toBe("failed");
    expect(after.error?.code).toBe("exit_nonzero");
    const retried = await client.retryFailed({ ids: [job.id] });
    expect(retried[0]!.status).toBe("queued");
    c = await take();
    expect((await client.fail(c.lease.id, { error: { code: "bad_input", message: "no" }, retryable: false })).status).toBe("failed");
  });

  test.skipIf(skip)("priority first, then age; requirements and accepts are matched; unmatched jobs say why", async () => {
    const { client } = t;
    for (const w of await client.listWorkers()) if (w.status === "online") await client.deregisterWorker(w.id);
    const low = await client.submitJob({ type: "command", spec: { argv: ["a"] }, priority: 0 });
    const high = await client.submitJob({ type: "command", spec: { argv: ["b"] }, priority: 10 });
    const gpuJob = await client.submitJob({ type: "command", spec: { argv: ["c"] }, requirements: { gpus: 1, gpu_type: "H100" } });
    const labelled = await client.submitJob({ type: "command", spec: { argv: ["d"] }, requirements: { labels: { zone: "eu" } } });
    const trainJob = await client.submitJob({ type: "train", spec: { dataset: "art_x", model: {} }, preflight: false });
    const cpu = await client.registerWorker({ name: "cpu-only", capabilities: CPU_WORKER, accepts: ["command"] });
    const got: string[] = [];
    for (;;) {
      const r = await client.claim(cpu.id, { wait_s: 0, max_jobs: 1 });
      if (!r) break;
      got.push(r.job.id);
      await client.complete(r.lease.id, {});
    }
    expect(got).toEqual([high.id, low.id]);
    const waiting = await client.getJob(gpuJob.id);
    expect(waiting.status).toBe("queued");
    expect(waiting.waiting_reason).toMatch(/GPU/);
    expect((await client.getJob(trainJob.id)).waiting_reason).toMatch(/does not accept train/);
    const gpuWorker = await client.registerWorker({
      name: "gpu-box",
      capabilities: { cpus: 16, memory_gb: 64, gpus: [{ name: "NVIDIA H100 80GB HBM3", memory_gb: 80 }], labels: { zone: "eu" } },
      accepts: ["command"],
    });
    const r1 = (await client.claim(gpuWorker.id, { wait_s: 0, max_jobs: 8 }))!;
    expect(r1.claims.map((c) => c.job.id).sort()).toEqual([gpuJob.id, labelled.id].sort());
    for (const c of r1.claims) await client.complete(c.lease.id, {});
    await client.cancelJob(trainJob.id);
  });

  test.skipIf(skip)("long-polling workers: each new job goes to exactly one waiting worker that accepts it, at once", async () => {
    const { client } = t;
    for (const w of await client.listWorkers()) if (w.status === "online") await client.deregisterWorker(w.id);
    const auditOnly = await client.registerWorker({ name: "audit-only", capabilities: CPU_WORKER, accepts: ["audit"] });
    const [a, b] = [await client.registerWorker({ name: "idle-a", capabilities: CPU_WORKER }), await client.registerWorker({ name: "idle-b", capabilities: CPU_WORKER })];
    const t0 = Date.now();
    const polls = [client.claim(auditOnly.id, { wait_s: 2 }), client.claim(a.id, { wait_s: 10, max_jobs: 4 }), client.claim(b.id, { wait_s: 10, max_jobs: 4 })];
    // Let the three long-polls park (on SQLite a submission then claims for them in its own transaction).
    await new Promise((r) => setTimeout(r, 300));
    const first = await client.submitJob({ type: "command", spec: { argv: ["first"] } });
    const got1 = await Promise.race([polls[1]!.then((r) => ({ r, i: 1 })), polls[2]!.then((r) => ({ r, i: 2 }))]);
    expect(Date.now() - t0).toBeLessThan(2000 + 300);
    expect(got1.r!.claims.map((c) => c.job.id)).toEqual([first.id]);
    expect(got1.r!.lease.attempt).toBe(1);
    const second = await client.submitJob({ type: "command", spec: { argv: ["second"] } });
    const got2 = (await polls[3 - got1.i])!;
    // A submission that a parked long-poll took answers the job as it is: already running on that worker.
    for (const [job, claim] of [[first, got1.r!], [second, got2]] as const) expect([job.status, job.worker_id]).toEqual(["running", claim.job.worker_id]);
    expect(got2.claims.map((c) => c.job.id)).toEqual([second.id]);
    // The worker that accepts only audit jobs got neither, and its poll ends empty.
    expect(await polls[0]).toBeNull();
    for (const [job, lease] of [[first.id, got1.r!.lease.id], [second.id, got2.lease.id]] as const) {
      const running = await client.getJob(job);
      expect(running.status).toBe("running");
      expect(running.worker_id).toBe(job === first.id ? [a, b][got1.i - 1]!.id : [a, b][2 - got1.i]!.id);
      expect((await client.complete(lease, {})).status).toBe("succeeded");
    }
    const events = [];
    for await (const ev of client.events(first.id)) events.push(ev.status);
    expect(events).toEqual(["queued", "running", "succeeded"]);
  });

  test.skipIf(skip)("cancel: queued at once; running asks the worker via heartbeat and ends canceled", async () => {
    const { client } = t;
    const queued = await client.submitJob({ type: "command", spec: { argv: ["x"] }, priority: -5 });
    expect((await client.cancelJob(queued.id)).status).toBe("canceled");
    await expect(client.cancelJob(queued.id)).rejects.toMatchObject({ code: "conflict" });
    const running = await client.submitJob({ type: "command", spec: { argv: ["y"] }, priority: 100 });
    const w = await client.registerWorker({ name: "canceler", capabilities: CPU_WORKER });
    const c = (await client.claim(w.id, { wait_s: 1 }))!;
    expect(c.job.id).toBe(running.id);
    expect((await client.cancelJob(running.id)).cancel_requested).toBe(true);
    expect((await client.heartbeat(c.lease.id)).cancel_requested).toBe(true);
    const after = await client.fail(c.lease.id, { error: { code: "canceled", message: "stopped" }, kind: "canceled" });
    expect(after.status).toBe("canceled");
  });

  test.skipIf(skip)("idempotent submission returns the same job", async () => {
    const { client } = t;
    const a = await client.submitJob({ type: "command", spec: { argv: ["once"] } }, { idempotencyKey: `k-${backend.name}` });
    const [b, c] = await Promise.all([
      client.submitJob({ type: "command", spec: { argv: ["once"] } }, { idempotencyKey: `k-${backend.name}` }),
      client.submitJob({ type: "command", spec: { argv: ["once"] } }, { idempotencyKey: `k-${backend.name}` }),
    ]);
    expect(b.id).toBe(a.id);
    expect(c.id).toBe(a.id);
    const res = await client.raw("POST", "/v1/jobs", { body: { type: "command", spec: { argv: ["once"] } }, headers: { "idempotency-key": `k-${backend.name}` } });
    expect(res.status).toBe(200);
    await client.cancelJob(a.id);
  });

  test.skipIf(skip)("a worker that registers again under its name loses its old leases at once", async () => {
    const { client } = t;
    const job = await client.submitJob({ type: "command", spec: { argv: ["z"] }, priority: 200 });
    const w = await client.registerWorker({ name: "restarter", capabilities: CPU_WORKER });
    const c = (await client.claim(w.id, { wait_s: 1 }))!;
    expect(c.job.id).toBe(job.id);
    const w2 = await client.registerWorker({ name: "restarter", capabilities: CPU_WORKER });
    await expect(client.heartbeat(c.lease.id)).rejects.toMatchObject({ code: "lease_lost" });
    await expect(client.claim(w.id, { wait_s: 0 })).rejects.toBeInstanceOf(ForgeError);
    const again = (await client.claim(w2.id, { wait_s: 1 }))!;
    expect(again.job.id).toBe(job.id);
    expect(again.lease.attempt).toBe(2);
    await client.complete(again.lease.id, {});
    await client.deregisterWorker(w2.id);
  });

  test.skipIf(skip)("logs stream as NDJSON with follow; events end with the final state; metrics form series", async () => {
    const { client } = t;
    const job = await client.submitJob({ type: "command", spec: { argv: ["log"] }, priority: 300 });
    const w = await client.registerWorker({ name: "logger", capabilities: CPU_WORKER });
    const c = (await client.claim(w.id, { wait_s: 1 }))!;
    const followed: string[] = [];
    const follow = (async () => {
      for await (const l of client.followLogs(job.id)) followed.push(l.line);
    })();
    const events: string[] = [];
    const ev = (async () => {
      for await (const e of client.events(job.id)) events.push(e.type);
    })();
    await client.sendLogs(c.lease.id, { lines: [{ line: "one", stream: "stdout" }, { line: "two", stream: "stderr" }] });
    await client.sendMetrics(c.lease.id, { points: [{ name: "loss", step: 1, value: 2.5 }, { name: "loss", step: 2, value: 1.25 }] });
    await client.sendLogs(c.lease.id, { lines: [{ line: "three", stream: "stdout" }] });
    await client.complete(c.lease.id, {});
    await Promise.all([follow, ev]);
    expect(followed).toEqual(["one", "two", "three"]);
    expect(events[0]).toBe("queued");
    expect(events).toContain("running");
    expect(events.at(-1)).toBe("succeeded");
    const logs = await client.getLogs(job.id);
    expect(logs.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(logs[1]!.stream).toBe("stderr");
    const m = await client.getMetrics(job.id);
    expect(m.series.loss!.map((p) => p.value)).toEqual([2.5, 1.25]);
    const manifest = await client.getManifest(job.id);
    expect(manifest.attempts).toHaveLength(1);
    expect(manifest.attempts[0]!.worker.name).toBe("logger");
  });
});
