import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, CPU_WORKER, createOrg, http, isErrorBody, postgresAvailable, startTestServer, type TestServer } from "./helpers.js";

const HAVE_PG = await postgresAvailable();

const paths = (res: { json: any }): string[] => (res.json?.error?.details ?? []).map((d: { path: string }) => d.path);

describe.each(BACKENDS)("HTTP contract on $name", (backend) => {
  const skip = backend.name === "postgres" && !HAVE_PG;
  let t: TestServer;
  let url: string;
  let admin: string;
  beforeAll(async () => {
    if (skip) return;
    // Small limits so the 413 paths are cheap to reach.
    t = await startTestServer(backend, { bodyLimitBytes: 16 * 1024, maxBlobBytes: 64 * 1024 });
    url = t.server.url;
    admin = t.server.adminKey!;
  });
  afterAll(async () => {
    await t?.close();
  });

  test.skipIf(skip)("401 for a missing, malformed, unknown or revoked key; both header forms work", async () => {
    for (const headers of [{}, { authorization: "Bearer" }, { authorization: "Basic abc" }, { authorization: "Bearer nope" }, { authorization: "Bearer nxk_unknownunknownunknown" }, { "x-nexa-api-key": "nxk_x" }]) {
      const res = await http(url, "GET", "/v1/jobs", { headers });
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.json.error.code).toBe("unauthenticated");
    }
    expect((await http(url, "GET", "/v1/jobs", { headers: { "x-nexa-api-key": admin } })).status).toBe(200);
    expect((await http(url, "GET", "/v1/jobs", { headers: { authorization: `bearer   ${admin}` } })).status).toBe(200);
    const key = await t.client.createKey({ name: "short-lived", scopes: ["jobs:read"] });
    expect((await http(url, "GET", "/v1/jobs", { key: key.key })).status).toBe(200);
    await t.client.revokeKey(key.id);
    const after = await http(url, "GET", "/v1/jobs", { key: key.key });
    expect(after.status).toBe(401);
    expect(after.json.error.code).toBe("unauthenticated");
    // Revoking twice is fine; revoking an unknown key is 404.
    expect((await http(url, "DELETE", `/v1/keys/${key.id}`, { key: admin })).status).toBe(204);
    expect((await http(url, "DELETE", "/v1/keys/key_nothing", { key: admin })).status).toBe(404);
    // The raw key is never listed.
    const listed = await t.client.listKeys();
    expect(listed.every((k) => k.key === undefined)).toBe(true);
    expect(listed.find((k) => k.id === key.id)?.revoked_at).not.toBeNull();
  });

  test.skipIf(skip)("403 for a key without the scope, and for org management by anyone but the instance admin", async () => {
    const reader = (await t.client.createKey({ name: "reader", scopes: ["jobs:read"] })).key!;
    const writer = (await t.client.createKey({ name: "writer", scopes: ["jobs:write"] })).key!;
    const worker = (await t.client.createKey({ name: "worker", scopes: ["worker"] })).key!;
    const submit = { type: "command", spec: { argv: ["true"] } };
    const cases: [string, string, string, unknown, number][] = [
      [reader, "POST", "/v1/jobs", submit, 403],
      [reader, "POST", "/v1/jobs/batch", { jobs: [submit] }, 403],
      [reader, "POST", "/v1/workers", { name: "w", capabilities: CPU_WORKER }, 403],
      [reader, "POST", "/v1/keys", { name: "k", scopes: ["admin"] }, 403],
      [writer, "POST", "/v1/keys", { name: "k", scopes: ["admin"] }, 403],
      [writer, "GET", "/v1/keys", undefined, 403],
      [writer, "POST", "/v1/workers", { name: "w", capabilities: CPU_WORKER }, 403],
      [worker, "POST", "/v1/jobs", submit, 403],
      [worker, "POST", "/v1/orgs", { name: "nope" }, 403],
      [writer, "POST", "/v1/jobs", submit, 201],
      [writer, "GET", "/v1/jobs", undefined, 200],
      [worker, "GET", "/v1/jobs", undefined, 200],
      [reader, "GET", "/v1/usage", undefined, 200],
    ];
    for (const [key, method, path, body, status] of cases) {
      const res = await http(url, method, path, { key, body });
      expect(res.status, `${method} ${path}`).toBe(status);
      if (status === 403) expect(res.json.error.code).toBe("forbidden");
    }
    // Scope is checked before the body: an invalid body from the wrong key is still 403.
    expect((await http(url, "POST", "/v1/jobs", { key: reader, body: { nonsense: true } })).status).toBe(403);
    const other = await createOrg(t, "scoped-other");
    const res = await http(url, "POST", "/v1/orgs", { key: other.key, body: { name: "grandchild" } });
    expect(res.status).toBe(403);
    expect(res.json.error.message).toMatch(/instance admin/);
    expect((await http(url, "POST", "/v1/orgs", { key: admin, body: { name: "scoped-other" } })).status).toBe(409);
  });

  test.skipIf(skip)("422 names every failing field, in bodies, batches and query strings", async () => {
    let res = await http(url, "POST", "/v1/jobs", { key: admin, body: { type: "command", spec: { argv: "ls" }, priority: 5000, extra: 1 } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("invalid_request");
    expect(paths(res)).toEqual(expect.arrayContaining(["spec.argv", "priority"]));
    expect(paths(res).some((p) => p === "(body)" || p === "extra" || p.includes("extra"))).toBe(true);

    res = await http(url, "POST", "/v1/jobs", { key: admin, body: { type: "teleport", spec: {} } });
    expect(res.status).toBe(422);
    expect(paths(res)).toContain("type");

    res = await http(url, "POST", "/v1/jobs", { key: admin, body: { type: "command", spec: { argv: ["x"], env: { "1BAD": "v" } }, requirements: { gpus: -1 }, retry: { max_attempts: 0 } } });
    expect(paths(res)).toEqual(expect.arrayContaining(["spec.env.1BAD", "requirements.gpus", "retry.max_attempts"]));

    res = await http(url, "POST", "/v1/jobs/batch", { key: admin, body: { jobs: [{ type: "command", spec: { argv: ["ok"] } }, { type: "command", spec: { argv: [] } }] } });
    expect(res.status).toBe(422);
    expect(paths(res)).toEqual(["jobs.1.spec.argv"]);

    res = await http(url, "POST", "/v1/keys", { key: admin, body: { name: "", scopes: ["root"] } });
    expect(paths(res)).toEqual(expect.arrayContaining(["name", "scopes.0"]));

    res = await http(url, "POST", "/v1/workers", { key: admin, body: { name: "w" } });
    expect(paths(res)).toContain("capabilities");

    const w = await t.client.registerWorker({ name: "validator", capabilities: CPU_WORKER });
    res = await http(url, "POST", `/v1/workers/${w.id}/claim`, { key: admin, body: { wait_s: -1, max_jobs: 1000 } });
    expect(paths(res)).toEqual(expect.arrayContaining(["wait_s", "max_jobs"]));

    res = await http(url, "GET", "/v1/jobs?limit=0&status=sleeping", { key: admin });
    expect(res.status).toBe(422);
    expect(paths(res)).toEqual(expect.arrayContaining(["query.limit", "query.status"]));
    res = await http(url, "GET", "/v1/usage?group_by=week", { key: admin });
    expect(paths(res)).toEqual(["query.group_by"]);
    res = await http(url, "GET", "/v1/usage?since=yesterday-ish", { key: admin });
    expect(res.status).toBe(422);
    expect(paths(res)).toEqual(["query.since"]);

    res = await http(url, "POST", "/v1/jobs", { key: admin, body: "{not json" });
    expect(res.status).toBe(422);
    expect(paths(res)).toEqual(["(body)"]);
    res = await http(url, "POST", "/v1/jobs", { key: admin, body: "[1,2]" });
    expect(res.status).toBe(422);
    res = await http(url, "POST", "/v1/jobs", { key: admin, body: "a=b", headers: { "content-type": "text/plain" } });
    expect(res.status).toBe(422);
    expect(isErrorBody(res.json)).toBe(true);
    // Strings PostgreSQL cannot store (NUL) are refused by name, never a 500.
    res = await http(url, "POST", "/v1/jobs", { key: admin, body: { type: "command", name: "a\u0000b", spec: { argv: ["x"] } } });
    expect(res.status).toBe(422);
    expect(paths(res)).toEqual(["name"]);
  });

  test.skipIf(skip)("413 for a JSON body over the limit and a blob over its limit, declared or streamed", async () => {
    const big = { type: "command", spec: { argv: ["x".repeat(20 * 1024)] } };
    let res = await http(url, "POST", "/v1/jobs", { key: admin, body: big });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe("payload_too_large");

    // A blob larger than the JSON limit but within the blob limit is fine.
    const ok = new Uint8Array(40 * 1024).fill(7);
    res = await http(url, "PUT", "/v1/blobs", { key: admin, rawBody: ok, headers: { "content-type": "application/octet-stream" } });
    expect(res.status).toBe(201);
    expect(res.json.size).toBe(40 * 1024);

    const tooBig = new Uint8Array(80 * 1024).fill(9);
    res = await http(url, "PUT", "/v1/blobs", { key: admin, rawBody: tooBig, headers: { "content-type": "application/octet-stream" } });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe("payload_too_large");

    // Streamed without a content-length: refused once the limit is crossed.
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 20; i++) ctl.enqueue(new Uint8Array(8 * 1024).fill(i));
        ctl.close();
      },
    });
    res = await http(url, "PUT", "/v1/blobs", { key: admin, rawBody: stream, headers: { "content-type": "application/octet-stream" } });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe("payload_too_large");
    // The server is fine afterwards.
    expect((await http(url, "GET", "/v1/jobs", { key: admin })).status).toBe(200);
  });

  test.skipIf(skip)("a key's rate limit answers 429 with Retry-After, and recovers", async () => {
    const limited = (await t.client.createKey({ name: "slow", scopes: ["jobs:read"], rate_limit_rps: 2 })).key!;
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await http(url, "GET", "/v1/jobs", { key: limited }));
    const statuses = answers.map((r) => r.status);
    // Burst of 2·rps, then refused.
    expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
    expect(statuses.slice(4)).toContain(429);
    const refused = answers.find((r) => r.status === 429)!;
    expect(refused.json.error.code).toBe("rate_limited");
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
    // Other keys are not affected.
    expect((await http(url, "GET", "/v1/jobs", { key: admin })).status).toBe(200);
    await new Promise((r) => setTimeout(r, retryAfter * 1000));
    expect((await http(url, "GET", "/v1/jobs", { key: limited })).status).toBe(200);
  });

  test.skipIf(skip)("unknown routes and methods are 404 with the error body", async () => {
    for (const [m, p] of [["GET", "/v1/nothing"], ["DELETE", "/v1/jobs"], ["PATCH", "/v1/jobs"]] as const) {
      const res = await http(url, m, p, { key: admin });
      expect(res.status).toBe(404);
      expect(isErrorBody(res.json)).toBe(true);
    }
  });
});
