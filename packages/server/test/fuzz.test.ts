import fc from "fast-check";
import { ROUTES } from "@nexa/server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, CPU_WORKER, http, isErrorBody, postgresAvailable, startTestServer, type TestServer } from "./helpers.js";

const HAVE_PG = await postgresAvailable();
// per backend: 300 in all. NEXA_FUZZ_RUNS / NEXA_FUZZ_SEED replay or widen a run (fast-check prints the seed of a failure).
const RUNS = Number(process.env.NEXA_FUZZ_RUNS ?? 150);
const SEED = process.env.NEXA_FUZZ_SEED === undefined ? undefined : Number(process.env.NEXA_FUZZ_SEED);

/** A body each route accepts, as the seed that mutations start from. */
const SEEDS: Record<string, Record<string, unknown>> = {
  "POST /v1/orgs": { name: "fuzz-org" },
  "POST /v1/keys": { name: "k", scopes: ["jobs:read"], rate_limit_rps: 100 },
  "POST /v1/jobs": { type: "command", spec: { argv: ["true"], env: { A: "1" } }, name: "n", priority: 1, requirements: { cpus: 1, labels: { a: "b" } }, limits: { max_runtime_s: 5 }, retry: { max_attempts: 2 }, project: "p" },
  "POST /v1/jobs/batch": { jobs: [{ type: "command", spec: { argv: ["true"] } }] },
  "POST /v1/jobs/retry": { ids: ["job_x"], type: "command", since: "2020-01-01T00:00:00Z" },
  "POST /v1/workers": { name: "fuzz-w", capabilities: { cpus: 2, memory_gb: 4, gpus: [{ name: "H100", memory_gb: 80 }], labels: {} }, accepts: ["command"], version: "1" },
  "POST /v1/workers/:id/claim": { wait_s: 0, max_jobs: 2 },
  "POST /v1/leases/:id/logs": { lines: [{ line: "x", stream: "stdout", ts: "2020-01-01T00:00:00Z" }] },
  "POST /v1/leases/:id/metrics": { points: [{ name: "loss", step: 1, value: 0.5 }] },
  "POST /v1/leases/:id/complete": { outputs: {}, usage: { cpu_s: 1, gpu_s: { H100: 2 } }, manifest: { attempt: 1 } },
  "POST /v1/leases/:id/fail": { error: { code: "x", message: "y" }, retryable: true, kind: "error" },
  "POST /v1/leases/complete": { leases: [{ lease_id: "lease_x", outputs: {} }] },
  "POST /v1/artifacts": { name: "a", kind: "dataset", digest: `sha256:${"0".repeat(64)}`, metadata: { k: 1 }, parents: [], project: "p" },
};

const QUERY_KEYS = ["limit", "cursor", "status", "type", "project", "follow", "after", "attempt", "since", "until", "group_by", "name", "kind", "producer_job_id"];
const printable = fc.string({ unit: fc.constantFrom(..." !#$%&'()*+,-./0123456789:;<=>?@ABCXYZ[]^_`abcxyz{|}~"), maxLength: 40 });
const weird = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom("", "0", "-1", "1e309", "NaN", "null", "true", "[]", "{}", "%00", "\u0000", "..", "a".repeat(3000), "sha256:", "2020-13-45", "ﬀ𝄞", "job_", "art_x"),
);

describe.each(BACKENDS)("fuzzed requests on $name", (backend) => {
  const skip = backend.name === "postgres" && !HAVE_PG;
  let t: TestServer;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    if (skip) return;
    t = await startTestServer(backend, { bodyLimitBytes: 256 * 1024, maxBlobBytes: 256 * 1024 });
    const c = t.client;
    // Real ids to aim at. The job is finished so streams on it end at once.
    const job = await c.submitJob({ type: "command", spec: { argv: ["true"] }, priority: 1000 });
    const w = await c.registerWorker({ name: "fuzz-worker", capabilities: CPU_WORKER });
    const cl = (await c.claim(w.id, { wait_s: 1 }))!;
    await c.sendLogs(cl.lease.id, { lines: [{ line: "l" }] });
    await c.complete(cl.lease.id, {});
    const blob = await c.putBlob(new TextEncoder().encode("fuzz"));
    const art = await c.createArtifact({ name: "fz", digest: blob.digest as `sha256:${string}` });
    Object.assign(ids, { job: job.id, worker: w.id, lease: cl.lease.id, blob: blob.digest, artifact: art.id });
  });
  afterAll(async () => {
    await t?.close();
  });

  test.skipIf(skip)("PUT /v1/blobs with a parsed body (JSON null, object, text) is a 422 naming content-type, not a 500", async () => {
    // Seed 220145361 found it: a JSON `null` body reached the handler as `null`, which was dereferenced.
    for (const [type, text] of [["application/json", "null"], ["application/json; charset=utf-8", "{}"], ["text/plain", "abc"], ["application/json", "0"]] as const) {
      const res = await http(t.server.url, "PUT", "/v1/blobs", { key: t.server.adminKey!, headers: { "content-type": type }, body: text });
      expect(res.status, `${type} ${text}: ${res.text}`).toBe(422);
      expect(res.json.error.details[0].path).toBe("content-type");
    }
  });

  test.skipIf(skip)("arbitrary bodies, query strings and headers never get a 5xx, and errors always have the wire shape", async () => {
    const routes = ROUTES.filter((r) => r.method === "GET" || r.method === "POST" || r.method === "PUT" || r.method === "HEAD");
    expect(routes.length).toBeGreaterThan(25);
    const idArb = fc.oneof(
      fc.constantFrom(...Object.values(ids)),
      fc.constantFrom("job_00000000000000000000000000", "lease_0000", "wrk_0", `sha256:${"a".repeat(64)}`, "art_0"),
      weird,
    );
    const bodyArb = (seed: Record<string, unknown> | undefined) =>
      fc.oneof(
        fc.jsonValue({ maxDepth: 4 }),
        ...(seed
          ? [
              fc.constant(seed),
              fc.record({ k: fc.constantFrom(...Object.keys(seed), "extra"), v: fc.jsonValue({ maxDepth: 3 }) }).map(({ k, v }) => ({ ...seed, [k]: v })),
              fc
                .record({ k: fc.constantFrom(...Object.keys(seed)), v: fc.oneof(weird, fc.integer(), fc.double({ noNaN: true }), fc.constant(2 ** 31), fc.constant(2 ** 53), fc.constant(-(2 ** 40))) })
                .map(({ k, v }) => ({ ...seed, [k]: v })),
            ]
          : []),
      );
    const headerArb = fc.record(
      {
        "idempotency-key": printable,
        range: fc.oneof(printable, fc.constantFrom("bytes=0-0", "bytes=-1", "bytes=5-", "bytes=99999999999999999999-", "bytes=1-0", "bytes=0-1,3-4")),
        "x-nexa-digest": fc.oneof(printable, fc.constant(`sha256:${"b".repeat(64)}`)),
        "x-nexa-media-type": printable,
        "last-event-id": printable,
        "content-type": fc.constantFrom("application/json", "text/plain", "application/octet-stream", "application/json; charset=utf-8", "multipart/form-data"),
      },
      { requiredKeys: [] },
    );
    const requestArb = fc.constantFrom(...routes).chain((r) =>
      fc.record({
        route: fc.constant(r),
        id: idArb,
        body: bodyArb(SEEDS[`${r.method} ${r.url}`]),
        query: fc.dictionary(fc.oneof(fc.constantFrom(...QUERY_KEYS), printable), weird, { maxKeys: 4 }),
        headers: headerArb,
        raw: fc.option(fc.uint8Array({ maxLength: 64 }), { freq: 4 }),
      }),
    );

    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(requestArb, async ({ route: r, id, body, query, headers, raw }) => {
        let path = r.url.replace(/:(id|digest)\b/, encodeURIComponent(id));
        let sendBody = body;
        // A long-poll on a real worker would wait: fuzz everything but the wait.
        if (r.url === "/v1/workers/:id/claim" && id === ids.worker && typeof sendBody === "object" && sendBody !== null && !Array.isArray(sendBody)) sendBody = { ...sendBody, wait_s: 0 };
        if (r.url === "/v1/workers/:id/claim" && id === ids.worker && (typeof sendBody !== "object" || sendBody === null || Array.isArray(sendBody))) sendBody = { wait_s: 0 };
        const qs = new URLSearchParams(query).toString();
        if (qs !== "") path += `?${qs}`;
        const withBody = r.method === "POST" || r.method === "PUT";
        const res = await http(t.server.url, r.method, path, {
          key: t.server.adminKey!,
          headers,
          timeoutMs: 10_000,
          ...(withBody ? (raw !== null && r.method === "PUT" ? { rawBody: raw } : { body: JSON.stringify(sendBody) }) : {}),
        });
        seen.set(String(res.status), (seen.get(String(res.status)) ?? 0) + 1);
        const what = `${r.method} ${path} ${JSON.stringify(headers)} ${JSON.stringify(sendBody)?.slice(0, 300)} → ${res.status} ${res.text.slice(0, 300)}`;
        expect(res.status, what).toBeLessThan(500);
        if (res.status >= 400 && r.method !== "HEAD") expect(isErrorBody(res.json), what).toBe(true);
      }),
      { numRuns: RUNS, endOnFailure: true, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    // The fuzz reached handlers, not only the validator.
    expect([...seen.keys()].some((s) => s.startsWith("2")), JSON.stringify([...seen])).toBe(true);
    expect(seen.get("422") ?? 0).toBeGreaterThan(0);
    // And the server is healthy afterwards.
    expect((await http(t.server.url, "GET", "/readyz")).status).toBe(200);
  });
});
