import { deploymentIdOf, type Deployment, type Job } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { startServer, type RunningServer } from "@nexa/server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, CPU_WORKER, http, postgresAvailable } from "./helpers.js";

// The control-plane side of deployments, with the worker played over the real HTTP API: a
// `deploy` job is claimed and completed with the annotation the deploy handler writes, and the
// worker heartbeat reports what a worker's supervisor would. (test/deployments.test.ts runs real
// WorkerAgents serving real processes.)
const HAVE_PG = await postgresAvailable();
const MODEL = `sha256:${"ab".repeat(32)}`;

describe.each(BACKENDS)("deployments on $name", (backend) => {
  const skip = backend.name === "postgres" && !HAVE_PG;
  let env: Awaited<ReturnType<typeof backend.create>>;
  let server: RunningServer;
  let admin: ForgeClient;

  const start = async () => {
    server = await startServer({ home: env.home, databaseUrl: env.databaseUrl, port: 0, rateLimitRps: 0 });
    admin = new ForgeClient({ url: server.url, apiKey: server.adminKey });
  };
  beforeAll(async () => {
    if (skip) return;
    env = await backend.create();
    await start();
  });
  afterAll(async () => {
    await server?.close();
    await env?.cleanup();
  });

  /** The deployment once the registry has taken in every queue event so far. */
  const settled = async (id: string, client = admin): Promise<Deployment> => {
    await server.deployments.idle();
    return client.getDeployment(id);
  };

  /** Plays a worker: claims the deploy job and completes it as the deploy handler does. */
  const serve = async (workerId: string, url: string, client = admin): Promise<Job> => {
    const claim = await client.claim(workerId, { wait_s: 5 });
    expect(claim?.job.type).toBe("deploy");
    const spec = claim!.job.spec as { deployment_id?: string };
    const deployment = { id: claim!.job.id, deployment_id: deploymentIdOf(claim!.job.id, spec), url, model: "m", backend: "torch", pid: 1, started_at: new Date().toISOString() };
    const done = await client.complete(claim!.lease.id, { outputs: {}, manifest: { annotations: { deployment } } });
    await server.deployments.idle();
    return done;
  };

  test.skipIf(skip)("submit → starting; job succeeds → healthy with the worker's url; heartbeats update it; filters", async () => {
    const job = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "alpha" }, requirements: { labels: { serve: "1" } } });
    const id = deploymentIdOf(job.id, {});
    expect(id).toMatch(/^dep_/);
    let d = await settled(id);
    expect(d).toMatchObject({ id, name: "alpha", status: "starting", job_id: job.id, url: null, worker_id: null, restarts: 0, stopped_at: null });

    const w = await admin.registerWorker({ name: "gpu-a", capabilities: { ...CPU_WORKER, labels: { serve: "1" } } });
    const done = await serve(w.id, "http://127.0.0.1:9001");
    expect(done.status).toBe("succeeded");
    d = await settled(id);
    expect(d).toMatchObject({ status: "healthy", url: "http://127.0.0.1:9001", backend: "torch", worker_id: w.id, job_id: job.id, error: null });

    // The worker reports the server restarting in place, then healthy again.
    expect(await admin.workerHeartbeat(w.id, { deployments: [{ id, state: "restarting", url: d.url!, restarts: 1 }] })).toEqual({ stop: [] });
    expect((await settled(id)).status).toBe("unhealthy");
    expect(await admin.workerHeartbeat(w.id, { deployments: [{ id, state: "healthy", url: d.url!, restarts: 1 }] })).toEqual({ stop: [] });
    expect((await settled(id)).status).toBe("healthy");

    expect((await admin.listDeployments({ status: "healthy", name: "alpha" })).map((x) => x.id)).toEqual([id]);
    expect(await admin.listDeployments({ name: "nobody" })).toEqual([]);
    expect(await admin.listDeployments({ status: "stopped" })).toEqual([]);
  });

  test.skipIf(skip)("a lost worker's deployment gets a new deploy job, another worker serves it, the old worker is told to stop", async () => {
    const job = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "bravo" }, requirements: { labels: { pool: "b" } } });
    const id = deploymentIdOf(job.id, {});
    const a = await admin.registerWorker({ name: "pool-b-1", capabilities: { ...CPU_WORKER, labels: { pool: "b" } } });
    await serve(a.id, "http://127.0.0.1:9101");
    expect((await settled(id)).worker_id).toBe(a.id);

    // Worker A leaves (deregisters): the deployment starts again from its stored submission.
    await admin.deregisterWorker(a.id);
    let d = await settled(id);
    expect(d).toMatchObject({ status: "starting", restarts: 1, worker_id: null, url: null });
    expect(d.job_id).not.toBe(job.id);
    const again = await admin.getJob(d.job_id);
    expect(again).toMatchObject({ type: "deploy", status: "queued", requirements: { labels: { pool: "b" } } });
    expect(again.spec).toMatchObject({ model: MODEL, name: "bravo", deployment_id: id });

    const b = await admin.registerWorker({ name: "pool-b-2", capabilities: { ...CPU_WORKER, labels: { pool: "b" } } });
    await serve(b.id, "http://127.0.0.1:9102");
    d = await settled(id);
    expect(d).toMatchObject({ status: "healthy", worker_id: b.id, url: "http://127.0.0.1:9102", restarts: 1, job_id: again.id });

    // A worker that still runs the old instance (it was only cut off) is told to stop it.
    expect(await admin.workerHeartbeat(a.id, { deployments: [{ id, state: "healthy", url: "http://127.0.0.1:9101", restarts: 0 }] })).toEqual({ stop: [id] });
    expect(await admin.workerHeartbeat(b.id, { deployments: [{ id, state: "healthy", url: "http://127.0.0.1:9102", restarts: 0 }] })).toEqual({ stop: [] });

    // B registers again under its name (a restarted worker): moved again.
    const b2 = await admin.registerWorker({ name: "pool-b-2", capabilities: { ...CPU_WORKER, labels: { pool: "b" } } });
    d = await settled(id);
    expect(d).toMatchObject({ status: "starting", restarts: 2 });
    await serve(b2.id, "http://127.0.0.1:9103");
    expect(await settled(id)).toMatchObject({ status: "healthy", worker_id: b2.id, restarts: 2 });

    // The sweeper marks a silent worker offline: moved again.
    await server.ctx.queue.markStaleWorkers(-60_000);
    d = await settled(id);
    expect(d).toMatchObject({ status: "starting", restarts: 3 });
    await admin.stopDeployment(id); // leave nothing queued for the tests that follow
    expect((await settled(id)).status).toBe("stopped");
    expect((await admin.getJob(d.job_id)).status).toBe("canceled");
  });

  test.skipIf(skip)("DELETE: stopping until the serving worker confirms; stopped at once when that worker is gone or the job never ran", async () => {
    const job = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "charlie" }, requirements: { labels: { pool: "c" } } });
    const id = deploymentIdOf(job.id, {});
    const w = await admin.registerWorker({ name: "pool-c", capabilities: { ...CPU_WORKER, labels: { pool: "c" } } });
    await serve(w.id, "http://127.0.0.1:9201");
    expect((await settled(id)).status).toBe("healthy");

    const stopping = await admin.stopDeployment(id);
    expect(stopping).toMatchObject({ id, status: "stopping", stopped_at: null });
    expect(await admin.workerHeartbeat(w.id, { deployments: [{ id, state: "healthy", url: "http://127.0.0.1:9201", restarts: 0 }] })).toEqual({ stop: [id] });
    expect((await settled(id)).status).toBe("stopping");
    expect(await admin.workerHeartbeat(w.id, { deployments: [{ id, state: "stopped", url: "http://127.0.0.1:9201", restarts: 0 }] })).toEqual({ stop: [] });
    const stopped = await settled(id);
    expect(stopped.status).toBe("stopped");
    expect(stopped.stopped_at).not.toBeNull();
    // Stopping again changes nothing; a stopped deployment is not started again when its worker leaves.
    expect((await admin.stopDeployment(id)).status).toBe("stopped");
    await admin.deregisterWorker(w.id);
    expect(await settled(id)).toMatchObject({ status: "stopped", restarts: 0 });

    // Served by a worker that is gone: stopped at once.
    const job2 = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "charlie-2" }, requirements: { labels: { pool: "c2" } } });
    const id2 = deploymentIdOf(job2.id, {});
    const w2 = await admin.registerWorker({ name: "pool-c2", capabilities: { ...CPU_WORKER, labels: { pool: "c2" } } });
    await serve(w2.id, "http://127.0.0.1:9202");
    await server.ctx.db.updateTable("workers").set({ status: "offline" }).where("id", "=", w2.id).execute(); // gone without the hook firing yet
    expect((await admin.stopDeployment(id2)).status).toBe("stopped");

    // Still queued (no worker can run it): its job is canceled, the deployment stopped.
    const job3 = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "charlie-3" }, requirements: { labels: { pool: "nowhere" } } });
    const id3 = deploymentIdOf(job3.id, {});
    await server.deployments.idle();
    expect((await admin.stopDeployment(id3)).status).toBe("stopped");
    expect((await admin.getJob(job3.id)).status).toBe("canceled");
  });

  test.skipIf(skip)("a deploy job that fails for good leaves the deployment failed with its error", async () => {
    const job = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "delta" }, requirements: { labels: { pool: "d" } } });
    const id = deploymentIdOf(job.id, {});
    const w = await admin.registerWorker({ name: "pool-d", capabilities: { ...CPU_WORKER, labels: { pool: "d" } } });
    const claim = await admin.claim(w.id, { wait_s: 5 });
    await admin.fail(claim!.lease.id, { error: { code: "invalid_model", message: "model sha256:ab… has no config.json" }, retryable: false });
    expect(await settled(id)).toMatchObject({ status: "failed", error: "invalid_model: model sha256:ab… has no config.json", url: null });
    // A worker that reports its server kept exiting fails a served deployment too.
    const job2 = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "delta-2" }, requirements: { labels: { pool: "d" } } });
    const id2 = deploymentIdOf(job2.id, {});
    await serve(w.id, "http://127.0.0.1:9301");
    expect(await admin.workerHeartbeat(w.id, { deployments: [{ id: id2, state: "failed", restarts: 5 }] })).toEqual({ stop: [] });
    const d = await settled(id2);
    expect(d.status).toBe("failed");
    expect(d.error).toContain("kept exiting");
  });

  test.skipIf(skip)("org isolation and bad input: 404 for another org's or an unknown id, 422 naming the field", async () => {
    const job = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "echo" }, requirements: { labels: { pool: "e" } } });
    const id = deploymentIdOf(job.id, {});
    const w = await admin.registerWorker({ name: "pool-e", capabilities: { ...CPU_WORKER, labels: { pool: "e" } } });
    await serve(w.id, "http://127.0.0.1:9401");
    const other = await admin.createOrg(`other-${backend.name}`);
    const key = other.key!;

    for (const [method, path] of [["GET", `/v1/deployments/${id}`], ["DELETE", `/v1/deployments/${id}`], ["GET", "/v1/deployments/dep_nope"], ["DELETE", "/v1/deployments/dep_nope"]] as const) {
      const res = await http(server.url, method, path, { key });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json.error.code).toBe("not_found");
    }
    expect((await http(server.url, "GET", "/v1/deployments", { key })).json).toEqual({ items: [] });
    // Another org's worker reporting this deployment learns nothing and changes nothing.
    const ow = await admin.withKey(key).registerWorker({ name: "intruder", capabilities: CPU_WORKER });
    expect(await admin.withKey(key).workerHeartbeat(ow.id, { deployments: [{ id, state: "failed", restarts: 0 }] })).toEqual({ stop: [] });
    expect((await settled(id)).status).toBe("healthy");
    expect((await http(server.url, "POST", `/v1/workers/${w.id}/heartbeat`, { key, body: { deployments: [] } })).status).toBe(404);
    // A worker serving an id no deployment of its org has (a made-up deployment_id) is told to stop it.
    expect(await admin.workerHeartbeat(w.id, { deployments: [{ id: "dep_madeup", state: "healthy", restarts: 0 }, { id, state: "healthy", restarts: 0 }] })).toEqual({ stop: ["dep_madeup"] });
    // …but not a first job's deployment whose row is still being written.
    const fresh = await admin.submitJob({ type: "deploy", spec: { model: MODEL, name: "echo-2" }, requirements: { labels: { pool: "nowhere" } } });
    await server.ctx.db.deleteFrom("deployments").where("job_id", "=", fresh.id).execute();
    expect(await admin.workerHeartbeat(w.id, { deployments: [{ id: deploymentIdOf(fresh.id, {}), state: "starting", restarts: 0 }] })).toEqual({ stop: [] });
    await admin.cancelJob(fresh.id);
    expect((await settled(deploymentIdOf(fresh.id, {}))).status).toBe("stopped"); // recorded from the job's outcome after all

    const adminKey = server.adminKey!;
    const bad = await http(server.url, "POST", `/v1/workers/${w.id}/heartbeat`, { key: adminKey, body: { deployments: [{ id, state: "exploded" }] } });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(bad.json.error.details)).toContain("deployments.0.state");
    const badList = await http(server.url, "GET", "/v1/deployments?status=sleeping", { key: adminKey });
    expect(badList.status).toBe(422);
    expect(badList.json.error.message).toContain("status");
    expect((await http(server.url, "POST", "/v1/workers/wrk_nope/heartbeat", { key: adminKey, body: {} })).status).toBe(404);
    // A reader key may list but not stop.
    const reader = (await admin.createKey({ name: "reader", scopes: ["jobs:read"] })).key!;
    expect((await http(server.url, "GET", `/v1/deployments/${id}`, { key: reader })).status).toBe(200);
    expect((await http(server.url, "DELETE", `/v1/deployments/${id}`, { key: reader })).status).toBe(403);
    // A deploy spec's deployment_id must look like one.
    const badSpec = await http(server.url, "POST", "/v1/jobs", { key: adminKey, body: { type: "deploy", spec: { model: MODEL, name: "x", deployment_id: "job_123" } } });
    expect(badSpec.status).toBe(422);
    expect(JSON.stringify(badSpec.json.error.details)).toContain("spec.deployment_id");
    expect(await admin.getDeployment(id)).toMatchObject({ status: "healthy" });
  });

  test.skipIf(skip)("a control plane restart loses nothing; one that missed a lost worker moves its deployments at start", async () => {
    const before = await admin.listDeployments();
    const healthy = before.find((d) => d.name === "echo")!;
    expect(healthy.status).toBe("healthy");
    await server.close();
    await start();
    expect(await admin.listDeployments()).toEqual(before);

    // Its worker went offline while no control plane was running to notice.
    await server.close();
    const { openBackend } = await import("../src/store/index.js");
    const db = openBackend(env.databaseUrl);
    await db.db.updateTable("workers").set({ status: "offline" }).where("id", "=", healthy.worker_id!).execute();
    await db.close();
    await start();
    const moved = await settled(healthy.id);
    expect(moved).toMatchObject({ status: "starting", restarts: healthy.restarts + 1, worker_id: null });
    expect((await admin.getJob(moved.job_id)).spec).toMatchObject({ deployment_id: healthy.id });
  });
});
