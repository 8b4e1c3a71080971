import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StandInServer } from "@nexa/llm";
import { newId, openBackend } from "@nexa/server";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, http, postgresAvailable, startTestServer, type TestServer } from "./helpers.js";

const HAVE_PG = await postgresAvailable();

/** An upstream that accepts requests and never answers, remembering when each one's connection closed. */
async function stallingUpstream(): Promise<{ url: string; arrived: number; closed: number; close: () => Promise<void> }> {
  const state = { arrived: 0, closed: 0 };
  const open = new Set<IncomingMessage>();
  const server: Server = createServer((req) => {
    state.arrived++;
    open.add(req);
    req.socket.once("close", () => {
      state.closed++;
      open.delete(req);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get arrived() {
      return state.arrived;
    },
    get closed() {
      return state.closed;
    },
    close: async () => {
      for (const r of open) r.socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A deployment row as the deployments registry writes it (the gateway only reads them). */
async function insertDeployment(t: TestServer, orgId: string, project: string, name: string, url: string | null, status: string): Promise<void> {
  const now = Date.now();
  await t.server.ctx.db
    .insertInto("deployments")
    .values({ id: newId("dep"), org_id: orgId, project, name, job_id: newId("job"), submission: "{}", worker_id: null, url, backend: "torch", status, restarts: 0, error: null, created_at: now, updated_at: now, stopped_at: null })
    .execute();
}

const chat = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: "user", content: "hello gateway" }], ...extra });

describe.each(BACKENDS)("gateway on $name", (backend) => {
  const skip = backend.name === "postgres" && !HAVE_PG;
  let t: TestServer;
  let url: string;
  let admin: string;
  let orgId: string;
  let upA: StandInServer;
  let upB: StandInServer;
  let provider: StandInServer;
  const rootOf = (s: StandInServer) => s.url.replace(/\/v1$/, "");

  const addDeployment = (name: string, depUrl: string | null, status = "healthy") => insertDeployment(t, orgId, "proj-gw", name, depUrl, status);
  const gw = (path: string, body: unknown, opts: { key?: string; headers?: Record<string, string>; timeoutMs?: number } = {}) =>
    http(url, "POST", `/v1/gateway/${path}`, { key: opts.key ?? admin, body, ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
  const isOpenAIError = (j: any, code: string) => typeof j?.error?.message === "string" && typeof j?.error?.type === "string" && j?.error?.code === code;

  beforeAll(async () => {
    if (skip) return;
    const prices = join(mkdtempSync(join(tmpdir(), "nexa-gw-prices-")), "prices.json");
    writeFileSync(prices, JSON.stringify({ tokens_in_per_1k: 0.5, tokens_out_per_1k: 1.5 }));
    t = await startTestServer(backend, { pricesFile: prices, gateway: { timeoutS: 1, idleTimeoutS: 1, connectTimeoutS: 1, flushIntervalMs: 100, resolveCacheMs: 50 } });
    url = t.server.url;
    admin = t.server.adminKey!;
    orgId = (await t.server.ctx.db.selectFrom("orgs").select("id").where("name", "=", "default").executeTakeFirstOrThrow()).id;
    upA = await StandInServer.start({ model: "a" });
    upB = await StandInServer.start({ model: "b", reply: (c) => (c.kind === "chat" ? `from b: ${c.lastUser}` : " b") });
    provider = await StandInServer.start({ model: "gpt-x", apiKey: "sk-provider-secret" });
    for (const s of [upA, upB, provider]) s.keepLog = false;
    await addDeployment("dep-a", rootOf(upA));
    await addDeployment("dep-b", rootOf(upB));
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all([upA?.close(), upB?.close(), provider?.close()]);
  });

  test.skipIf(skip)("routes by model to a deployment (chat and completions), for any key of the org, and lists it as a model", async () => {
    const worker = (await t.client.createKey({ name: "gw-worker", scopes: ["worker"] })).key!;
    const res = await gw("chat/completions", chat("dep-a"), { key: worker });
    expect(res.status, res.text).toBe(200);
    expect(res.json.choices[0].message.content).toBe("echo: hello gateway");
    expect(res.json.model).toBe("dep-a");
    expect(res.headers.get("x-nexa-variant")).toBe("dep-a");
    const comp = await gw("completions", { model: "dep-b", prompt: "say" });
    expect(comp.status, comp.text).toBe(200);
    expect(comp.json.choices[0].text).toBe(" b");
    const models = await http(url, "GET", "/v1/gateway/models", { key: worker });
    expect(models.status).toBe(200);
    expect(models.json.object).toBe("list");
    expect(models.json.data.map((m: { id: string }) => m.id)).toEqual(expect.arrayContaining(["dep-a", "dep-b"]));
    // Without a key: 401, OpenAI-style.
    const anon = await http(url, "POST", "/v1/gateway/chat/completions", { body: chat("dep-a") });
    expect(anon.status).toBe(401);
    expect(isOpenAIError(anon.json, "unauthenticated")).toBe(true);
  });

  test.skipIf(skip)("routes to an external provider with the API key from the control plane's environment, never stored", async () => {
    const secret = `NEXA_TEST_GW_KEY_${backend.name.toUpperCase()}`;
    const put = await http(url, "PUT", "/v1/gateway/routes/prov", { key: admin, body: { targets: [{ provider: { base_url: provider.url, model: "gpt-x", api_key_secret: secret } }] } });
    expect(put.status, put.text).toBe(200);
    // The secret is not set yet: a 503 that names the variable.
    const missing = await gw("chat/completions", chat("prov"));
    expect(missing.status).toBe(503);
    expect(isOpenAIError(missing.json, "provider_secret_missing")).toBe(true);
    expect(missing.json.error.message).toContain(secret);
    process.env[secret] = "sk-provider-secret";
    try {
      const res = await gw("chat/completions", chat("prov"));
      expect(res.status, res.text).toBe(200);
      expect(res.json.model).toBe("gpt-x");
      expect(provider.lastAuthorization).toBe("Bearer sk-provider-secret");
      expect(res.headers.get("x-nexa-variant")).toBe("gpt-x");
      // A provider that refuses the key is the gateway's problem, not the caller's: 502.
      process.env[secret] = "sk-wrong";
      const refused = await gw("chat/completions", chat("prov"));
      expect(refused.status).toBe(502);
      expect(isOpenAIError(refused.json, "upstream_auth_failed")).toBe(true);
    } finally {
      delete process.env[secret];
    }
    const stored = await t.server.ctx.db.selectFrom("gateway_routes").select("targets").where("name", "=", "prov").executeTakeFirstOrThrow();
    expect(stored.targets).not.toContain("sk-provider-secret");
    expect(stored.targets).toContain(secret);
  });

  test.skipIf(skip)("streams SSE through event by event, with the upstream's usage metered and shown only when asked for", async () => {
    const read = async (body: unknown) => {
      const res = await fetch(`${url}/v1/gateway/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      expect(res.headers.get("x-nexa-variant")).toBe("dep-a");
      const text = await res.text();
      const events = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
      expect(events.at(-1)).toBe("[DONE]");
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
      return { content: chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), usage: chunks.filter((c) => c.usage).map((c) => c.usage) };
    };
    const plain = await read(chat("dep-a", { stream: true, user: "stream-user" }));
    expect(plain.content).toBe("echo: hello gateway");
    expect(plain.usage).toEqual([]);
    const withUsage = await read(chat("dep-a", { stream: true, stream_options: { include_usage: true } }));
    expect(withUsage.content).toBe("echo: hello gateway");
    expect(withUsage.usage).toHaveLength(1);
    expect(withUsage.usage[0].completion_tokens).toBe(3);
    // The gateway asked for usage even when the caller did not: the record has the tokens.
    const recs = await http(url, "GET", "/v1/gateway/requests?view=requests&route=dep-a&limit=10", { key: admin });
    const rec = recs.json.items.find((r: { user_id: string | null }) => r.user_id === "stream-user");
    expect(rec).toMatchObject({ stream: true, status: 200, tokens_out: 3, variant: "dep-a", upstream: "deployment:dep-a" });
    expect(rec.tokens_in).toBeGreaterThan(0);
  });

  test.skipIf(skip)("a stream is passed on as it arrives, not after the upstream has finished", async () => {
    // An upstream that sends one event, waits until the client has seen it, then finishes.
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    const slow = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: "first" } }] })}\n\n`);
      void released.then(() => res.end(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: " last" } }] })}\n\ndata: [DONE]\n\n`));
    });
    await new Promise<void>((r) => slow.listen(0, "127.0.0.1", () => r()));
    try {
      await addDeployment("dep-slow-stream", `http://127.0.0.1:${(slow.address() as AddressInfo).port}`);
      const res = await fetch(`${url}/v1/gateway/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(chat("dep-slow-stream", { stream: true })) });
      const reader = res.body!.getReader();
      let first = "";
      while (!first.includes('"first"')) first += new TextDecoder().decode((await reader.read()).value);
      expect(first).not.toContain("last");
      release();
      let rest = "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
      expect(rest).toContain('" last"');
      expect(rest).toContain("[DONE]");
      // No usage block upstream: the record counts one token per content delta.
      const recs = await http(url, "GET", "/v1/gateway/requests?view=requests&route=dep-slow-stream", { key: admin });
      expect(recs.json.items[0]).toMatchObject({ status: 200, stream: true, tokens_out: 2 });
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });

  test.skipIf(skip)("unknown model 404 and bad bodies 422, both OpenAI-style naming the field", async () => {
    const res = await gw("chat/completions", chat("no-such-model"));
    expect(res.status).toBe(404);
    expect(isOpenAIError(res.json, "model_not_found")).toBe(true);
    expect(res.json.error.param).toBe("model");
    expect(res.json.error.message).toContain("no-such-model");
    const noMessages = await gw("chat/completions", { model: "dep-a" });
    expect(noMessages.status).toBe(422);
    expect(noMessages.json.error.param).toBe("messages");
    expect(noMessages.json.error.type).toBe("invalid_request_error");
    const noModel = await gw("completions", { prompt: "x" });
    expect(noModel.status).toBe(422);
    expect(noModel.json.error.param).toBe("model");
    expect(noModel.json.error.message).toContain("model is required");
    const notJson = await http(url, "POST", "/v1/gateway/chat/completions", { key: admin, body: "{nope", headers: { "content-type": "application/json" } });
    expect(notJson.status).toBe(422);
    expect(notJson.json.error.type).toBe("invalid_request_error");
  });

  test.skipIf(skip)("per-key rpm and tpm limits answer 429 with Retry-After", async () => {
    const rpmKey = (await t.client.createKey({ name: "rpm", scopes: ["jobs:read"], rpm: 2 })).key!;
    expect((await gw("chat/completions", chat("dep-a"), { key: rpmKey })).status).toBe(200);
    expect((await gw("chat/completions", chat("dep-a"), { key: rpmKey })).status).toBe(200);
    const over = await gw("chat/completions", chat("dep-a"), { key: rpmKey });
    expect(over.status).toBe(429);
    expect(isOpenAIError(over.json, "rate_limit_exceeded")).toBe(true);
    expect(over.json.error.message).toContain("2 requests per minute");
    // 2 per minute: the next one is 30 s away.
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(29);
    expect(Number(over.headers.get("retry-after"))).toBeLessThanOrEqual(31);

    // One request uses 5 prompt + 3 completion tokens: over a 6-token budget, so the next waits.
    const tpmKey = (await t.client.createKey({ name: "tpm", scopes: ["worker"], tpm: 6 })).key!;
    const first = await gw("chat/completions", chat("dep-a"), { key: tpmKey });
    expect(first.status).toBe(200);
    expect(first.json.usage.total_tokens).toBe(8);
    const second = await gw("chat/completions", chat("dep-a"), { key: tpmKey });
    expect(second.status).toBe(429);
    expect(second.json.error.message).toContain("6 tokens per minute");
    // 2 tokens overdrawn at 6 a minute (0.1/s): back above zero in about 30 s.
    expect(Number(second.headers.get("retry-after"))).toBeGreaterThanOrEqual(20);
    expect(Number(second.headers.get("retry-after"))).toBeLessThanOrEqual(31);
    const listed = (await t.client.listKeys()).find((k) => k.name === "tpm");
    expect(listed).toMatchObject({ rpm: null, tpm: 6 });
  });

  test.skipIf(skip)("upstream refused → 502, upstream 5xx → 503, no healthy deployment → 503, each OpenAI-style", async () => {
    await addDeployment("dep-dead", `http://127.0.0.1:${await deadPort()}`);
    const refused = await gw("chat/completions", chat("dep-dead"));
    expect(refused.status).toBe(502);
    expect(isOpenAIError(refused.json, "upstream_unreachable")).toBe(true);
    expect(refused.json.error.type).toBe("api_error");

    upA.failNext(1, { status: 500 });
    const fiveHundred = await gw("chat/completions", chat("dep-a"));
    expect(fiveHundred.status).toBe(503);
    expect(isOpenAIError(fiveHundred.json, "upstream_error")).toBe(true);
    expect(fiveHundred.json.error.message).toContain("500");

    await addDeployment("dep-starting", null, "starting");
    const starting = await gw("chat/completions", chat("dep-starting"));
    expect(starting.status).toBe(503);
    expect(isOpenAIError(starting.json, "no_healthy_deployment")).toBe(true);
    expect(starting.json.error.message).toContain("starting");
    expect(starting.headers.get("retry-after")).toBe("5");

    // A route whose variant names a deployment that does not exist at all.
    await http(url, "PUT", "/v1/gateway/routes/ghost", { key: admin, body: { targets: [{ deployment: "never-deployed" }] } });
    const ghost = await gw("chat/completions", chat("ghost"));
    expect(ghost.status).toBe(503);
    expect(ghost.json.error.message).toContain("never-deployed");
  });

  test.skipIf(skip)("never hangs: a stalled upstream times out (504), and a client that leaves aborts the upstream request", async () => {
    const stall = await stallingUpstream();
    try {
      await addDeployment("dep-stall", stall.url);
      const t0 = Date.now();
      const res = await gw("chat/completions", chat("dep-stall"), { timeoutMs: 10_000 });
      expect(res.status).toBe(504);
      expect(isOpenAIError(res.json, "upstream_timeout")).toBe(true);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(stall.arrived).toBe(1);
      await expect.poll(() => stall.closed, { timeout: 3000 }).toBe(1);

      // A streaming client that gives up after 200 ms: the gateway drops the upstream connection.
      const ctl = new AbortController();
      const pending = fetch(`${url}/v1/gateway/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(chat("dep-stall", { stream: true })), signal: ctl.signal });
      await expect.poll(() => stall.arrived, { timeout: 3000 }).toBe(2);
      ctl.abort();
      await expect(pending).rejects.toThrow();
      await expect.poll(() => stall.closed, { timeout: 900 }).toBe(2);
    } finally {
      await stall.close();
    }
  });

  test.skipIf(skip)("route management validates with field-naming errors; jobs:read may not change routes", async () => {
    const bad = await http(url, "PUT", "/v1/gateway/routes/r1", { key: admin, body: { targets: [{ weight: -1 }] } });
    expect(bad.status).toBe(422);
    const paths = bad.json.error.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(["targets.0.weight", "targets.0.deployment"]));
    const dup = await http(url, "PUT", "/v1/gateway/routes/r1", { key: admin, body: { targets: [{ deployment: "dep-a" }, { deployment: "dep-a" }] } });
    expect(dup.status).toBe(422);
    expect(dup.json.error.details[0].path).toBe("targets.1.variant");
    const clear = await http(url, "PUT", "/v1/gateway/routes/r1", { key: admin, body: { targets: [{ provider: { base_url: "ftp://x", api_key_secret: "sk-live-123" } }] } });
    expect(clear.status).toBe(422);
    expect(clear.json.error.details.map((d: { path: string }) => d.path)).toEqual(expect.arrayContaining(["targets.0.provider.base_url", "targets.0.provider.api_key_secret"]));
    const badName = await http(url, "PUT", `/v1/gateway/routes/${encodeURIComponent("no spaces")}`, { key: admin, body: { targets: [{ deployment: "dep-a" }] } });
    expect(badName.status).toBe(422);
    expect(badName.json.error.details[0].path).toBe("name");

    const reader = (await t.client.createKey({ name: "reader", scopes: ["jobs:read"] })).key!;
    expect((await http(url, "PUT", "/v1/gateway/routes/r1", { key: reader, body: { targets: [{ deployment: "dep-a" }] } })).status).toBe(403);
    const writer = (await t.client.createKey({ name: "writer", scopes: ["jobs:write"] })).key!;
    const ok = await http(url, "PUT", "/v1/gateway/routes/r1", { key: writer, body: { targets: [{ deployment: "dep-a", weight: 2 }, { deployment: "dep-b", variant: "bee" }], sticky: false } });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({ name: "r1", sticky: false, targets: [{ deployment: "dep-a", weight: 2, variant: "dep-a" }, { deployment: "dep-b", weight: 1, variant: "bee" }] });
    const listed = await http(url, "GET", "/v1/gateway/routes", { key: reader });
    expect(listed.json.items.map((r: { name: string }) => r.name)).toContain("r1");
    // A route wins over a deployment of the same name, and its change is seen at once.
    await http(url, "PUT", "/v1/gateway/routes/dep-a", { key: admin, body: { targets: [{ deployment: "dep-b" }] } });
    expect((await gw("chat/completions", chat("dep-a"))).json.choices[0].message.content).toBe("from b: hello gateway");
    expect((await http(url, "DELETE", "/v1/gateway/routes/dep-a", { key: writer })).status).toBe(204);
    expect((await gw("chat/completions", chat("dep-a"))).json.choices[0].message.content).toBe("echo: hello gateway");
    expect((await http(url, "DELETE", "/v1/gateway/routes/dep-a", { key: writer })).status).toBe(404);
  });

  test.skipIf(skip)("an A/B route splits 10,000 requests within ±2% of its weights, the same user always on the same variant; records and usage add up", async () => {
    const put = await http(url, "PUT", "/v1/gateway/routes/ab", { key: admin, body: { targets: [{ deployment: "dep-a", weight: 70 }, { deployment: "dep-b", weight: 30 }] } });
    expect(put.status, put.text).toBe(200);
    const agent = new Agent({ connections: 32 });
    const call = async (user: string, viaHeader: boolean): Promise<string> => {
      const body = viaHeader ? chat("ab") : chat("ab", { user });
      const res = await fetch(`${url}/v1/gateway/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json", ...(viaHeader ? { "x-nexa-user": user } : {}) },
        body: JSON.stringify(body),
        dispatcher: agent,
      } as RequestInit);
      const j = (await res.json()) as { choices: { message: { content: string } }[] };
      expect(res.status).toBe(200);
      const variant = res.headers.get("x-nexa-variant")!;
      // The header tells the truth: the variant's upstream wrote the answer.
      expect(j.choices[0]!.message.content.startsWith(variant === "dep-b" ? "from b:" : "echo:")).toBe(true);
      return variant;
    };
    const N = 10_000;
    const first = new Map<string, string>();
    let next = 0;
    const a0 = upA.totals.completed;
    const b0 = upB.totals.completed;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < N) {
          const i = next++;
          first.set(`user-${i}`, await call(`user-${i}`, false));
        }
      }),
    );
    const counts = { "dep-a": 0, "dep-b": 0 } as Record<string, number>;
    for (const v of first.values()) counts[v] = (counts[v] ?? 0) + 1;
    expect(counts["dep-a"]! + counts["dep-b"]!).toBe(N);
    expect(Math.abs(counts["dep-a"]! / N - 0.7)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(counts["dep-b"]! / N - 0.3)).toBeLessThanOrEqual(0.02);
    expect(upA.totals.completed - a0).toBe(counts["dep-a"]);
    expect(upB.totals.completed - b0).toBe(counts["dep-b"]);
    // Sticky: 400 users again, half by the body's user field, half by X-Nexa-User.
    for (let i = 0; i < 400; i += 8) {
      const again = await Promise.all(Array.from({ length: 8 }, (_, k) => call(`user-${i + k}`, (i + k) % 2 === 1)));
      again.forEach((v, k) => expect(v).toBe(first.get(`user-${i + k}`)));
    }
    await agent.close();

    const report = await http(url, "GET", "/v1/gateway/requests?route=ab", { key: admin });
    expect(report.status, report.text).toBe(200);
    const byVariant = Object.fromEntries(report.json.summary.map((s: { variant: string }) => [s.variant, s]));
    expect(byVariant["dep-a"].requests + byVariant["dep-b"].requests).toBe(N + 400);
    expect(byVariant["dep-a"].errors).toBe(0);
    expect(byVariant["dep-a"].latency_p50_ms).toBeGreaterThan(0);
    expect(byVariant["dep-a"].latency_p99_ms).toBeGreaterThanOrEqual(byVariant["dep-a"].latency_p50_ms);
    const tokensIn = byVariant["dep-a"].tokens_in + byVariant["dep-b"].tokens_in;
    const tokensOut = byVariant["dep-a"].tokens_out + byVariant["dep-b"].tokens_out;
    expect(tokensIn).toBe((N + 400) * 5);
    expect(tokensOut).toBe(byVariant["dep-a"].requests * 3 + byVariant["dep-b"].requests * 4);

    // Usage: the route's tokens and their cost under the price table, beside the jobs.
    const usage = await t.client.getUsage({ group_by: "job" });
    const row = usage.rows.find((r) => r.key === "gateway:ab")!;
    expect(row).toMatchObject({ tokens_in: tokensIn, tokens_out: tokensOut, attempts: N + 400 });
    expect(row.cost_usd).toBeCloseTo((tokensIn / 1000) * 0.5 + (tokensOut / 1000) * 1.5, 6);
    const byType = await t.client.getUsage({ group_by: "type" });
    expect(byType.rows.find((r) => r.key === "gateway")!.tokens_in).toBeGreaterThanOrEqual(tokensIn);
    const byProject = await t.client.getUsage({ group_by: "project" });
    expect(byProject.rows.find((r) => r.key === "proj-gw")!.tokens_in).toBeGreaterThanOrEqual(tokensIn);
  }, 180_000);

  test.skipIf(skip)("without a user id, or on a route with sticky off, assignment is weighted at random", async () => {
    await http(url, "PUT", "/v1/gateway/routes/rnd", { key: admin, body: { targets: [{ deployment: "dep-a", weight: 3 }, { deployment: "dep-b", weight: 1 }], sticky: false } });
    await http(url, "PUT", "/v1/gateway/routes/rnd-sticky", { key: admin, body: { targets: [{ deployment: "dep-a", weight: 3 }, { deployment: "dep-b", weight: 1 }] } });
    const share = async (model: string, user: string | undefined) => {
      let a = 0;
      for (let i = 0; i < 400; i += 20) {
        const got = await Promise.all(Array.from({ length: 20 }, () => gw("chat/completions", chat(model, user === undefined ? {} : { user }))));
        a += got.filter((r) => r.headers.get("x-nexa-variant") === "dep-a").length;
      }
      return a / 400;
    };
    // 400 draws at 3:1: the share of dep-a is 0.75 ± 0.022 (one standard deviation).
    expect(Math.abs((await share("rnd", "same-user")) - 0.75)).toBeLessThan(0.1);
    expect(Math.abs((await share("rnd-sticky", undefined)) - 0.75)).toBeLessThan(0.1);
    // While on a sticky route one user id always gets one variant.
    expect([0, 1]).toContain(await share("rnd-sticky", "same-user"));
  });

  test.skipIf(skip)("every request is recorded, failures included; a bad query names its field", async () => {
    const recs = await http(url, "GET", "/v1/gateway/requests?view=requests&route=no-such-model", { key: admin });
    expect(recs.json.items.length).toBeGreaterThanOrEqual(1);
    expect(recs.json.items[0]).toMatchObject({ status: 404, error_code: "model_not_found", variant: null, endpoint: "chat/completions" });
    const codes = new Set<string | null>();
    for (const route of ["dep-a", "prov", "dep-dead", "dep-starting", "dep-stall"]) {
      const r = await http(url, "GET", `/v1/gateway/requests?view=requests&route=${route}`, { key: admin });
      for (const item of r.json.items as { error_code: string | null }[]) codes.add(item.error_code);
    }
    for (const c of ["rate_limit_exceeded", "upstream_unreachable", "upstream_error", "no_healthy_deployment", "upstream_timeout", "client_closed", "provider_secret_missing"]) expect(codes, c).toContain(c);
    const bad = await http(url, "GET", "/v1/gateway/requests?since=yesterday", { key: admin });
    expect(bad.status).toBe(422);
    expect(bad.json.error.details[0].path).toBe("query.since");
  });

  test.skipIf(skip)("records still buffered are written when the control plane closes", async () => {
    const t2 = await startTestServer(backend, { gateway: { flushIntervalMs: 600_000 } });
    try {
      const org = (await t2.server.ctx.db.selectFrom("orgs").select("id").where("name", "=", "default").executeTakeFirstOrThrow()).id;
      await insertDeployment(t2, org, "p", "dep-a", rootOf(upA), "healthy");
      const res = await http(t2.server.url, "POST", "/v1/gateway/chat/completions", { key: t2.server.adminKey!, body: chat("dep-a", { user: "last-one" }) });
      expect(res.status).toBe(200);
      await t2.server.close();
      const store = openBackend(t2.databaseUrl);
      try {
        const rows = await store.db.selectFrom("gateway_requests").select(["user_id", "tokens_out"]).execute();
        expect(rows.map((r) => r.user_id)).toEqual(["last-one"]);
        const usage = await store.db.selectFrom("usage_records").select(["type", "tokens_out"]).execute();
        expect(usage.map((u) => [u.type, Number(u.tokens_out)])).toEqual([["gateway", 3]]);
      } finally {
        await store.close();
      }
    } finally {
      await t2.close();
    }
  });
});
