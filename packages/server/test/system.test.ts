import { Validator } from "@seriousme/openapi-schema-validator";
import { MIGRATION_NAMES, migrate, openBackend, ROUTES, startServer } from "@nexa/server";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, serverForSuite, CPU_WORKER, http, postgresAvailable, startTestServer, type TestServer } from "./helpers.js";

const HAVE_PG = await postgresAvailable();

/** Prometheus text → sample value by `name{labels}` exactly as exposed. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe("OpenAPI document", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(BACKENDS[0]!);
  });
  afterAll(async () => {
    await t?.close();
  });

  test("/openapi.json is valid OpenAPI 3.1 and covers every registered route", async () => {
    const res = await http(t.server.url, "GET", "/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.json;
    expect(doc.openapi).toMatch(/^3\.1\./);
    const v = new Validator();
    const result = await v.validate(doc);
    expect(result.errors ?? [], String(JSON.stringify(result.errors)).slice(0, 2000)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(v.version).toBe("3.1");
    const ops = new Set<string>();
    for (const r of ROUTES) {
      const path = r.url.replace(/:([A-Za-z_]+)/g, "{$1}");
      const op = doc.paths[path]?.[r.method.toLowerCase()];
      expect(op, `${r.method} ${r.url}`).toBeDefined();
      expect(ops.has(op.operationId), `duplicate operationId ${op.operationId}`).toBe(false);
      ops.add(op.operationId);
      // Path parameters declared; bodies documented; errors point at the shared error schema.
      for (const m of r.url.matchAll(/:([A-Za-z_]+)/g)) expect(op.parameters.some((p: { name: string; in: string }) => p.name === m[1] && p.in === "path")).toBe(true);
      if (r.body && !r.rawBody) expect(op.requestBody.content["application/json"].schema).toBeTypeOf("object");
      expect(op.responses.default.content["application/json"].schema.$ref).toBe("#/components/schemas/ErrorBody");
      if (r.scope !== null) expect(op.security.length).toBeGreaterThan(0);
    }
    const documented = Object.values(doc.paths as Record<string, object>).reduce((n, p) => n + Object.keys(p).length, 0);
    expect(documented).toBe(ROUTES.length);
    // The submission schema is the zod one: its discriminator values are all there.
    const submit = JSON.stringify(doc.paths["/v1/jobs"].post.requestBody);
    for (const type of ["generate", "audit", "distill", "train", "evaluate", "deploy", "command"]) expect(submit).toContain(`"${type}"`);
  });
});

describe.each(BACKENDS)("metrics and migrations on $name", (backend) => {
  const { skip, t } = serverForSuite(backend, HAVE_PG);

  test.skipIf(skip)("/metrics exposes queue depth by status and type, claim latency, job durations, workers online, HTTP durations", async () => {
    const { client } = t;
    await client.submitJobs([
      { type: "command", spec: { argv: ["a"] } },
      { type: "command", spec: { argv: ["b"] } },
      { type: "command", spec: { argv: ["c"] } },
      { type: "audit", spec: { dataset: "art_y" } },
    ]);
    const w1 = await client.registerWorker({ name: "m1", capabilities: CPU_WORKER, accepts: ["command"] });
    await client.registerWorker({ name: "m2", capabilities: CPU_WORKER });
    const c = (await client.claim(w1.id, { wait_s: 1, max_jobs: 2 }))!;
    expect(c.claims).toHaveLength(2);
    await client.complete(c.claims[0]!.lease.id, {});
    await client.fail(c.claims[1]!.lease.id, { error: { code: "x", message: "no" }, retryable: false });
    const res = await http(t.server.url, "GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const s = samples(res.text);
    expect(s.get('nexa_queue_jobs{status="queued",type="command"}')).toBe(1);
    expect(s.get('nexa_queue_jobs{status="queued",type="audit"}')).toBe(1);
    expect(s.get('nexa_queue_jobs{status="succeeded",type="command"}')).toBe(1);
    expect(s.get('nexa_queue_jobs{status="failed",type="command"}')).toBe(1);
    expect(s.get("nexa_workers_online")).toBe(2);
    expect(s.get("nexa_claim_latency_seconds_count")).toBe(2);
    expect(s.get('nexa_claim_latency_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(s.get('nexa_job_duration_seconds_count{type="command",status="succeeded"}')).toBe(1);
    expect(s.get('nexa_job_duration_seconds_count{type="command",status="failed"}')).toBe(1);
    expect(s.get('nexa_jobs_finished_total{type="command",status="succeeded"}')).toBe(1);
    expect(s.get('nexa_http_request_duration_seconds_count{method="POST",route="/v1/jobs/batch",status="201"}')).toBe(1);
    expect(s.get('nexa_http_request_duration_seconds_count{method="POST",route="/v1/workers/:id/claim",status="200"}')).toBe(1);
    // The process's own metrics, under prom-client's standard names with our prefix.
    expect(s.get("nexa_process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(s.has("nexa_nodejs_eventloop_lag_seconds")).toBe(true);
    await client.deregisterWorker(w1.id);
    expect(samples((await http(t.server.url, "GET", "/metrics")).text).get("nexa_workers_online")).toBe(1);
  });

  test.skipIf(skip)("a database with a migration this code does not know is refused, and left as it was", async () => {
    const { home, databaseUrl } = t;
    const backendDb = openBackend(databaseUrl);
    try {
      expect(await migrate(backendDb)).toEqual({ applied: [], current: MIGRATION_NAMES.at(-1) });
      await sql`insert into nexa_migrations (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(backendDb.db);
      await expect(migrate(backendDb)).rejects.toThrow(/database schema is newer than this Nexa Forge.*9999_from_the_future.*upgrade/);
      await expect(startServer({ home, databaseUrl, port: 0, writeCredentials: false })).rejects.toMatchObject({
        code: "conflict",
        message: expect.stringContaining("9999_from_the_future"),
      });
      const rows = await sql<{ name: string }>`select name from nexa_migrations order by name`.execute(backendDb.db);
      expect(rows.rows.map((r) => r.name)).toEqual([...MIGRATION_NAMES, "9999_from_the_future"]);
      // The running server still works on it.
      expect((await http(t.server.url, "GET", "/readyz")).status).toBe(200);
    } finally {
      await sql`delete from nexa_migrations where name = '9999_from_the_future'`.execute(backendDb.db);
      await backendDb.close();
    }
  });
});
