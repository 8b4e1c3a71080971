import { createHash } from "node:crypto";
import { ROUTES } from "@nexa/server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, CPU_WORKER, createOrg, http, isErrorBody, postgresAvailable, startTestServer, type TestServer } from "./helpers.js";

const HAVE_PG = await postgresAvailable();

/** A body that passes validation for each route with a path parameter, so the lookup is reached. */
const VALID_BODY: Record<string, unknown> = {
  "DELETE /v1/keys/:id": undefined,
  "GET /v1/jobs/:id": undefined,
  "POST /v1/jobs/:id/cancel": {},
  "POST /v1/jobs/:id/retry": {},
  "GET /v1/jobs/:id/logs": undefined,
  "GET /v1/jobs/:id/events": undefined,
  "GET /v1/jobs/:id/metrics": undefined,
  "GET /v1/jobs/:id/manifest": undefined,
  "DELETE /v1/workers/:id": undefined,
  "POST /v1/workers/:id/claim": { wait_s: 0 },
  "POST /v1/leases/:id/heartbeat": {},
  "POST /v1/leases/:id/logs": { lines: [{ line: "intruder" }] },
  "POST /v1/leases/:id/metrics": { points: [{ name: "x", step: 1, value: 1 }] },
  "POST /v1/leases/:id/complete": {},
  "POST /v1/leases/:id/fail": { error: { code: "x", message: "intruder" }, retryable: false },
  "GET /v1/blobs/:digest": undefined,
  "HEAD /v1/blobs/:digest": undefined,
  "GET /v1/artifacts/:id": undefined,
  "GET /v1/workflows/:id": undefined,
  "POST /v1/workflows/:id/cancel": {},
  "POST /v1/workflows/:id/resume": {},
  "GET /v1/deployments/:id": undefined,
  "DELETE /v1/deployments/:id": undefined,
  "POST /v1/workers/:id/heartbeat": { deployments: [] },
};

/** A made-up id of the same shape as a real one: same prefix, same length. */
function lookalike(id: string): string {
  if (id.startsWith("sha256:")) return `sha256:${createHash("sha256").update(id).digest("hex")}`;
  const [prefix, rest] = [id.slice(0, id.indexOf("_") + 1), id.slice(id.indexOf("_") + 1)];
  return prefix + "0".repeat(rest.length);
}

describe.each(BACKENDS)("org isolation on $name", (backend) => {
  const skip = backend.name === "postgres" && !HAVE_PG;
  let t: TestServer;
  let b: { key: string };
  const a: Record<string, string> = {};
  let aKey: string;

  beforeAll(async () => {
    if (skip) return;
    t = await startTestServer(backend);
    const orgA = await createOrg(t, "alpha");
    aKey = orgA.key;
    b = await createOrg(t, "bravo");
    const ca = orgA.client;
    // Org A: a finished job with logs, a running job under an active lease, a worker, a blob,
    // an artifact and a key.
    const done = await ca.submitJob({ type: "command", spec: { argv: ["echo", "a"] }, priority: 10 });
    const w = await ca.registerWorker({ name: "alpha-w", capabilities: CPU_WORKER });
    const c1 = (await ca.claim(w.id, { wait_s: 1 }))!;
    await ca.sendLogs(c1.lease.id, { lines: [{ line: "secret", stream: "stdout" }] });
    await ca.complete(c1.lease.id, {});
    const running = await ca.submitJob({ type: "command", spec: { argv: ["sleep", "9"] } });
    const c2 = (await ca.claim(w.id, { wait_s: 1 }))!;
    expect(c2.job.id).toBe(running.id);
    const blob = await ca.putBlob(new TextEncoder().encode("alpha bytes"));
    const art = await ca.createArtifact({ name: "alpha-data", digest: blob.digest as `sha256:${string}`, producer_job_id: done.id });
    const key = await ca.createKey({ name: "alpha-reader", scopes: ["jobs:read"] });
    const run = await ca.runWorkflow({ workflow: { name: "alpha-flow", steps: { only: { type: "command", with: { argv: ["true"] } } } } });
    const deploy = await ca.submitJob({ type: "deploy", spec: { model: blob.digest, name: "alpha-model" }, requirements: { labels: { nowhere: "1" } } });
    await t.server.deployments.idle();
    const deployment = (await ca.listDeployments())[0]!.id;
    expect((await ca.getDeployment(deployment)).job_id).toBe(deploy.id);
    Object.assign(a, { job: done.id, running: running.id, worker: w.id, lease: c2.lease.id, blob: blob.digest, artifact: art.id, key: key.id, workflow: run.id, deployment });
  });
  afterAll(async () => {
    await t?.close();
  });

  test.skipIf(skip)("every route with an id answers 404 for another org's resource, exactly as for an unknown id", async () => {
    const paramRoutes = ROUTES.filter((r) => /:(id|digest)\b/.test(r.url));
    expect(paramRoutes.length).toBeGreaterThanOrEqual(17);
    const uncovered = paramRoutes.map((r) => `${r.method} ${r.url}`).filter((k) => !(k in VALID_BODY));
    expect(uncovered, "add a valid body for each new route with an id").toEqual([]);
    let checked = 0;
    for (const r of paramRoutes) {
      const body = VALID_BODY[`${r.method} ${r.url}`];
      for (const [kind, id] of Object.entries(a)) {
        const path = r.url.replace(/:(id|digest)\b/, encodeURIComponent(id));
        const fakeId = lookalike(id);
        const fakePath = r.url.replace(/:(id|digest)\b/, encodeURIComponent(fakeId));
        const real = await http(t.server.url, r.method, path, { key: b.key, body, timeoutMs: 5000 });
        const fake = await http(t.server.url, r.method, fakePath, { key: b.key, body, timeoutMs: 5000 });
        const where = `${r.method} ${path} (org A's ${kind})`;
        expect(real.status, where).toBeGreaterThanOrEqual(400);
        expect(real.status, where).toBe(fake.status);
        if (r.method !== "HEAD") {
          expect(isErrorBody(real.json), where).toBe(true);
          // Same code, and the same message once the id is swapped: nothing tells the two apart.
          expect(real.json.error.code, where).toBe(fake.json.error.code);
          expect(String(real.json.error.message).replaceAll(id, "ID").replaceAll(encodeURIComponent(id), "ID"), where).toBe(
            String(fake.json.error.message).replaceAll(fakeId, "ID").replaceAll(encodeURIComponent(fakeId), "ID"),
          );
        }
        // The id that names this route's own kind of resource must be a plain 404.
        const own =
          (r.url.startsWith("/v1/jobs/") && (kind === "job" || kind === "running")) ||
          (r.url.startsWith("/v1/workers/") && kind === "worker") ||
          (r.url.startsWith("/v1/leases/") && kind === "lease") ||
          (r.url.startsWith("/v1/blobs/") && kind === "blob") ||
          (r.url.startsWith("/v1/artifacts/") && kind === "artifact") ||
          (r.url.startsWith("/v1/keys/") && kind === "key") ||
          (r.url.startsWith("/v1/workflows/") && kind === "workflow") ||
          (r.url.startsWith("/v1/deployments/") && kind === "deployment");
        if (own) expect(real.status, where).toBe(404);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);

    // Nothing of org A changed under org B's attempts.
    const ca = t.client.withKey(aKey);
    const running = await ca.getJob(a.running!);
    expect(running.status).toBe("running");
    expect(running.cancel_requested).toBe(false);
    expect((await ca.getDeployment(a.deployment!)).status).toBe("starting");
    expect((await ca.heartbeat(a.lease!)).cancel_requested).toBe(false);
    expect((await ca.getLogs(a.job!)).map((l) => l.line)).toEqual(["secret"]);
    expect((await ca.listKeys()).find((k) => k.id === a.key)?.revoked_at).toBeNull();
    expect((await ca.listWorkers()).find((w) => w.id === a.worker)?.status).toBe("online");
    expect(await ca.headBlob(a.blob!)).toEqual({ size: 11 });
    expect((await ca.getMetrics(a.running!)).series).toEqual({});
  });

  test.skipIf(skip)("lists and reports of another org show nothing of it", async () => {
    const cb = t.client.withKey(b.key);
    expect((await cb.listJobs()).items).toEqual([]);
    expect((await cb.listJobs({ status: "running" })).items).toEqual([]);
    expect(await cb.listWorkers()).toEqual([]);
    expect(await cb.listDeployments()).toEqual([]);
    expect((await cb.listArtifacts()).items).toEqual([]);
    expect((await cb.listArtifacts({ producer_job_id: a.job })).items).toEqual([]);
    expect((await cb.listKeys()).map((k) => k.name)).toEqual(["admin"]);
    expect((await cb.getUsage({ group_by: "job" })).rows).toEqual([]);
    // Org B may not point its artifacts at org A's blob, job or artifact either.
    const res = await http(t.server.url, "POST", "/v1/artifacts", {
      key: b.key,
      body: { name: "steal", digest: a.blob, producer_job_id: a.job, parents: [a.artifact] },
    });
    expect(res.status).toBe(422);
    expect(res.json.error.details.map((d: { path: string }) => d.path)).toContain("digest");
    // And an org admin is not the instance admin.
    expect((await http(t.server.url, "GET", "/v1/orgs", { key: b.key })).status).toBe(403);
  });
});
