import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "@nexa/server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, CPU_WORKER, http, postgresAvailable, startTestServer, type TestServer } from "./helpers.js";

const HAVE_PG = await postgresAvailable();

const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

// Prices picked so each metered quantity below costs a round number: reference values
// computed by hand from the table, not by the code under test.
const PRICES = { cpu_hour: 36, gpu_hour: { H100: 7.2 }, gpu_hour_default: 3.6, tokens_in_per_1k: 0.5, tokens_out_per_1k: 2 };

describe.each(BACKENDS)("blobs, artifacts and usage on $name", (backend) => {
  const skip = backend.name === "postgres" && !HAVE_PG;
  let t: TestServer;
  let url: string;
  let key: string;
  beforeAll(async () => {
    if (skip) return;
    const dir = mkdtempSync(join(tmpdir(), "nexa-prices-"));
    writeFileSync(join(dir, "prices.json"), JSON.stringify(PRICES));
    t = await startTestServer(backend, { pricesFile: join(dir, "prices.json") });
    url = t.server.url;
    key = t.server.adminKey!;
  });
  afterAll(async () => {
    await t?.close();
  });

  test.skipIf(skip)("uploads are verified against the claimed digest; a mismatch stores nothing", async () => {
    const bytes = new TextEncoder().encode("the quick brown fox");
    const wrong = sha("something else");
    let res = await http(url, "PUT", "/v1/blobs", { key, rawBody: bytes, headers: { "content-type": "application/octet-stream", "x-nexa-digest": wrong } });
    expect(res.status).toBe(422);
    expect(res.json.error.details[0].path).toBe("x-nexa-digest");
    expect(res.json.error.message).toContain(sha(bytes));
    expect((await http(url, "HEAD", `/v1/blobs/${wrong}`, { key })).status).toBe(404);
    expect((await http(url, "HEAD", `/v1/blobs/${sha(bytes)}`, { key })).status).toBe(404);
    res = await http(url, "PUT", "/v1/blobs", { key, rawBody: bytes, headers: { "content-type": "application/octet-stream", "x-nexa-digest": "md5:abc" } });
    expect(res.status).toBe(422);
    res = await http(url, "PUT", "/v1/blobs", { key, rawBody: bytes, headers: { "content-type": "application/octet-stream", "x-nexa-digest": sha(bytes) } });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ digest: sha(bytes), size: bytes.length, created: true });
    // Same bytes again: found, not created.
    res = await http(url, "PUT", "/v1/blobs", { key, rawBody: bytes, headers: { "content-type": "application/octet-stream" } });
    expect(res.status).toBe(200);
    expect(res.json.created).toBe(false);
  });

  test.skipIf(skip)("downloads: full, Range (start-end, open-ended, suffix), 416, HEAD, empty blob", async () => {
    const bytes = new Uint8Array(1000).map((_, i) => (i * 7) % 251);
    const { digest } = await t.client.putBlob(bytes);
    expect(digest).toBe(sha(bytes));
    let res = await fetch(`${url}/v1/blobs/${digest}`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    const range = async (h: string) => {
      const r = await fetch(`${url}/v1/blobs/${digest}`, { headers: { authorization: `Bearer ${key}`, range: h } });
      return { status: r.status, cr: r.headers.get("content-range"), len: r.headers.get("content-length"), body: new Uint8Array(await r.arrayBuffer()) };
    };
    let r = await range("bytes=10-19");
    expect([r.status, r.cr, r.len]).toEqual([206, "bytes 10-19/1000", "10"]);
    expect(r.body).toEqual(bytes.slice(10, 20));
    r = await range("bytes=990-");
    expect([r.status, r.cr]).toEqual([206, "bytes 990-999/1000"]);
    expect(r.body).toEqual(bytes.slice(990));
    r = await range("bytes=-5");
    expect([r.status, r.cr]).toEqual([206, "bytes 995-999/1000"]);
    expect(r.body).toEqual(bytes.slice(995));
    r = await range("bytes=-5000");
    expect([r.status, r.cr]).toEqual([206, "bytes 0-999/1000"]);
    r = await range("bytes=900-5000");
    expect([r.status, r.cr]).toEqual([206, "bytes 900-999/1000"]);
    for (const bad of ["bytes=1000-", "bytes=50-40", "bytes=-0", "bytes=5000-6000"]) {
      r = await range(bad);
      expect([r.status, r.cr], bad).toEqual([416, "bytes */1000"]);
    }
    const head = await fetch(`${url}/v1/blobs/${digest}`, { method: "HEAD", headers: { authorization: `Bearer ${key}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("1000");
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    expect(await t.client.headBlob(sha("never uploaded"))).toBeNull();
    res = await fetch(`${url}/v1/blobs/not-a-digest`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(422);
    const empty = await t.client.putBlob(new Uint8Array(0));
    expect(empty).toMatchObject({ digest: sha(""), size: 0 });
    res = await fetch(`${url}/v1/blobs/${empty.digest}`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  test.skipIf(skip)("artifacts: versions count up per name (also concurrently); lineage is validated and recorded", async () => {
    const { digest } = await t.client.putBlob(new TextEncoder().encode("dataset v1"), { mediaType: "application/jsonl" });
    const job = await t.client.submitJob({ type: "command", spec: { argv: ["make-data"] } });
    const v1 = await t.client.createArtifact({ name: "corpus", kind: "dataset", digest: digest as `sha256:${string}`, producer_job_id: job.id });
    expect(v1).toMatchObject({ name: "corpus", version: 1, kind: "dataset", size: 10, media_type: "application/jsonl", producer_job_id: job.id, parents: [] });
    const v2 = await t.client.createArtifact({ name: "corpus", digest: digest as `sha256:${string}`, parents: [v1.id] });
    expect(v2.version).toBe(2);
    expect(v2.parents).toEqual([v1.id]);
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => t.client.createArtifact({ name: "corpus", digest: digest as `sha256:${string}` })));
    expect(concurrent.map((a) => a.version).sort()).toEqual([3, 4, 5, 6, 7]);
    const other = await t.client.createArtifact({ name: "model", kind: "model", digest: digest as `sha256:${string}`, parents: [v2.id, v1.id, v2.id] });
    expect(other.version).toBe(1);
    expect(new Set(other.parents)).toEqual(new Set([v1.id, v2.id]));
    expect(await t.client.getArtifact(v2.id)).toEqual(v2);
    expect((await t.client.listArtifacts({ producer_job_id: job.id })).items.map((a) => a.id)).toEqual([v1.id]);
    expect((await t.client.listArtifacts({ name: "corpus" })).items.map((a) => a.version)).toEqual([7, 6, 5, 4, 3, 2, 1]);
    const page = await t.client.listArtifacts({ name: "corpus", limit: 3 });
    expect(page.items.map((a) => a.version)).toEqual([7, 6, 5]);
    expect((await t.client.listArtifacts({ name: "corpus", limit: 3, cursor: page.next_cursor! })).items.map((a) => a.version)).toEqual([4, 3, 2]);

    const bad = async (body: unknown) => http(url, "POST", "/v1/artifacts", { key, body });
    let res = await bad({ name: "x", digest, parents: ["art_doesnotexist"] });
    expect(res.status).toBe(422);
    expect(res.json.error.details[0].path).toBe("parents");
    res = await bad({ name: "x", digest, producer_job_id: "job_doesnotexist" });
    expect(res.json.error.details[0].path).toBe("producer_job_id");
    res = await bad({ name: "x", digest: sha("not uploaded") });
    expect(res.json.error.details[0].path).toBe("digest");
    res = await bad({ name: "x", digest, kind: "weights" });
    expect(res.json.error.details[0].path).toBe("kind");
    res = await bad({ name: "x", digest, parents: Array.from({ length: 1001 }, (_, i) => `art_${i}`) });
    expect(res.status).toBe(422);
    expect(res.json.error.details[0].path).toBe("parents");
    await t.client.cancelJob(job.id);
  });

  test.skipIf(skip)("usage is grouped by day, type, project and job, priced from the configured table", async () => {
    const j1 = await t.client.submitJob({ type: "command", spec: { argv: ["a"] }, project: "p1", priority: 900 });
    const j2 = await t.client.submitJob({ type: "audit", spec: { dataset: "art_x" }, project: "p2", priority: 899 });
    const w = await t.client.registerWorker({ name: "meter", capabilities: CPU_WORKER });
    const c1 = (await t.client.claim(w.id, { wait_s: 1 }))!;
    expect(c1.job.id).toBe(j1.id);
    // 100 CPU-s = 1.00, 500 H100-s = 1.00, 2k tokens in = 1.00, 500 tokens out = 1.00
    const done1 = await t.client.complete(c1.lease.id, { usage: { cpu_s: 100, gpu_s: { "NVIDIA H100 80GB HBM3": 500 }, tokens_in: 2000, tokens_out: 500 } });
    expect(done1.usage.cost_usd).toBeCloseTo(4, 9);
    let c2 = (await t.client.claim(w.id, { wait_s: 1 }))!;
    expect(c2.job.id).toBe(j2.id);
    // Preempted attempt still costs: 50 CPU-s = 0.50
    await t.client.fail(c2.lease.id, { error: { code: "preempted", message: "spot" }, kind: "preempted", usage: { cpu_s: 50 } });
    c2 = (await t.client.claim(w.id, { wait_s: 1 }))!;
    // 1000 s of a GPU not in the table: default 3.6/h = 1.00
    const done2 = await t.client.complete(c2.lease.id, { usage: { gpu_s: { "Tesla T4": 1000 } } });
    expect(done2.usage.cost_usd).toBeCloseTo(1.5, 9);
    expect(done2.usage.cpu_s).toBe(50);

    const byType = await t.client.getUsage({ group_by: "type" });
    expect(byType.currency).toBe("USD");
    const row = (rows: { key: string }[], k: string) => rows.find((r) => r.key === k) as (typeof byType.rows)[number];
    expect(row(byType.rows, "command")).toMatchObject({ jobs: 1, attempts: 1, cpu_s: 100, gpu_s: 500, tokens_in: 2000, tokens_out: 500 });
    expect(row(byType.rows, "command").cost_usd).toBeCloseTo(4, 6);
    expect(row(byType.rows, "audit")).toMatchObject({ jobs: 1, attempts: 2, cpu_s: 50, gpu_s: 1000 });
    expect(row(byType.rows, "audit").cost_usd).toBeCloseTo(1.5, 6);

    const byProject = await t.client.getUsage({ group_by: "project" });
    expect(row(byProject.rows, "p1").cost_usd).toBeCloseTo(4, 6);
    expect(row(byProject.rows, "p2").cost_usd).toBeCloseTo(1.5, 6);
    const byJob = await t.client.getUsage({ group_by: "job" });
    expect(row(byJob.rows, j1.id)).toMatchObject({ jobs: 1, attempts: 1 });
    expect(row(byJob.rows, j2.id)).toMatchObject({ jobs: 1, attempts: 2 });
    expect(byJob.total.cost_usd).toBeCloseTo(5.5, 6);
    expect(byJob.total.attempts).toBe(3);

    const byDay = await t.client.getUsage({ group_by: "day" });
    const today = new Date().toISOString().slice(0, 10);
    expect(byDay.rows.map((r) => r.key)).toEqual([today]);
    expect(byDay.rows[0]).toMatchObject({ jobs: 2, attempts: 3 });
    expect(byDay.rows[0]!.cost_usd).toBeCloseTo(5.5, 6);
    expect(byDay.total.jobs).toBe(2);
    expect((await t.client.getUsage({ group_by: "day", until: "2020-01-01T00:00:00Z" })).rows).toEqual([]);
    expect((await t.client.getUsage({ group_by: "day", since: "2020-01-01T00:00:00Z" })).rows).toHaveLength(1);
  });

  test.skipIf(skip)("a price table that is unreadable or invalid stops start-up with a message naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nexa-prices-"));
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ cpu_hour: -1 }));
    await expect(startServer({ home: dir, databaseUrl: `sqlite:${join(dir, "x.db")}`, port: 0, pricesFile: join(dir, "bad.json") })).rejects.toThrow(/bad\.json.*cpu_hour/);
    await expect(startServer({ home: dir, databaseUrl: `sqlite:${join(dir, "x.db")}`, port: 0, pricesFile: join(dir, "missing.json") })).rejects.toThrow(/missing\.json/);
  });
});
