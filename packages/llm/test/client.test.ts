import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LlmError, OpenAIClient, StandInServer, StructuredOutputError, chatJson, requestHash, sseData, type UsageRecord } from "../src/index.js";

let server: StandInServer;
let dir: string;

beforeAll(async () => {
  server = await StandInServer.start();
  dir = await mkdtemp(join(tmpdir(), "nexa-llm-client-"));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  server.reset();
  server.setLatency(0);
  server.setReply((c) => (c.kind === "chat" ? `echo: ${c.lastUser}` : " echo"));
});

const user = (content: string) => [{ role: "user" as const, content }];

describe("OpenAIClient against the stand-in", () => {
  it("sends a chat completion and reports usage; the server counts the body's hash", async () => {
    const usage: UsageRecord[] = [];
    const client = new OpenAIClient({ baseUrl: server.url, model: "m1", onUsage: (u) => usage.push(u) });
    const r = await client.chat({ messages: user("hello there"), temperature: 0 });
    expect(r.text).toBe("echo: hello there");
    expect(r.cached).toBe(false);
    expect(r.attempts).toBe(1);
    expect(usage).toEqual([{ prompt_tokens: 5, completion_tokens: 3, estimated: false, model: "m1" }]);
    expect(server.completedCount({ messages: user("hello there"), temperature: 0, model: "m1" })).toBe(1);
    await client.close();
  });

  it("streams chat tokens over SSE and returns the assembled reply with usage", async () => {
    server.setReply(() => "one two three four");
    const client = new OpenAIClient({ baseUrl: server.url, model: "m" });
    const gen = client.chatStream({ messages: user("count"), logprobs: true, top_logprobs: 2 });
    const deltas: string[] = [];
    let final;
    for (;;) {
      const n = await gen.next();
      if (n.done) {
        final = n.value;
        break;
      }
      deltas.push(n.value.delta);
    }
    expect(deltas.filter((d) => d !== "")).toEqual(["one", " two", " three", " four"]);
    expect(final.text).toBe("one two three four");
    expect(final.usage?.completion_tokens).toBe(4);
    expect(final.logprobs?.map((l) => l.token)).toEqual(["one", " two", " three", " four"]);
    expect(final.logprobs?.[0]?.top_logprobs).toHaveLength(2);
    await client.close();
  });

  it("retries a stream that fails before its first event", async () => {
    server.failNext(1, { status: 429, retryAfterS: 0 });
    server.setReply(() => "a b");
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", retryBaseDelayMs: 1 });
    const gen = client.chatStream({ messages: user("s") });
    let n = await gen.next();
    while (!n.done) n = await gen.next();
    expect(n.value).toMatchObject({ text: "a b", attempts: 2 });
    await client.close();
  });

  it("returns chat logprobs and completion prompt logprobs with echo", async () => {
    server.setLogprob((tok) => (tok.trim() === "Paris" ? -0.1 : -2));
    const client = new OpenAIClient({ baseUrl: server.url, model: "m" });
    server.setReply(() => "Paris is big");
    const r = await client.chat({ messages: user("capital?"), logprobs: true, top_logprobs: 1 });
    expect(r.logprobs?.map((l) => l.logprob)).toEqual([-0.1, -2, -2]);
    server.setReply(() => "");
    const c = await client.complete({ prompt: "The capital is Paris", echo: true, logprobs: 0, max_tokens: 0 });
    const lp = c.response.choices[0]!.logprobs!;
    expect(lp.tokens).toEqual(["The", " capital", " is", " Paris"]);
    expect(lp.token_logprobs).toEqual([null, -2, -2, -0.1]);
    expect(lp.text_offset).toEqual([0, 3, 11, 14]);
    await client.close();
  });

  it("keeps at most maxConcurrency requests in flight", async () => {
    server.setLatency(40);
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", maxConcurrency: 4 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.chat({ messages: user(`q${i}`) })));
    expect(server.totals.maxInFlight).toBe(4);
    expect(server.totals.completed).toBe(20);
    await client.close();
  });

  it("retries 5xx and succeeds; the failed attempts are visible at the server", async () => {
    server.failNext(2, { status: 503 });
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", retryBaseDelayMs: 10 });
    const r = await client.chat({ messages: user("x") });
    expect(r.attempts).toBe(3);
    const body = { messages: user("x"), model: "m" };
    expect(server.requestCount(body)).toBe(3);
    expect(server.completedCount(body)).toBe(1);
    await client.close();
  });

  it("honours Retry-After on 429", async () => {
    server.failNext(1, { status: 429, retryAfterS: 1 });
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", retryBaseDelayMs: 1 });
    const t0 = performance.now();
    await client.chat({ messages: user("x") });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(990);
    await client.close();
  });

  it("fails a 400 at once, naming endpoint, model and status", async () => {
    server.failNext(1, { status: 400 });
    const client = new OpenAIClient({ baseUrl: server.url, model: "m-400", retryBaseDelayMs: 1 });
    const err = await client.chat({ messages: user("x") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    const e = err as LlmError;
    expect(e.retryable).toBe(false);
    expect(e.attempts).toBe(1);
    expect(e.status).toBe(400);
    expect(e.message).toContain(server.url);
    expect(e.message).toContain("model m-400");
    expect(e.message).toContain("last status 400");
    await client.close();
  });

  it("gives up after maxRetries on persistent 5xx, HTML error pages and non-JSON 200s", async () => {
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", maxRetries: 2, retryBaseDelayMs: 1 });
    server.failNext(5, { status: 502, body: "<html>bad gateway</html>" });
    const e1 = (await client.chat({ messages: user("a") }).catch((e: unknown) => e)) as LlmError;
    expect(e1.attempts).toBe(3);
    expect(e1.message).toMatch(/after 3 attempts.*last status 502/);
    expect(e1.message).toContain("bad gateway");
    server.clearFaults();
    server.failNext(5, { garbage: "<html>proxy login</html>" });
    const e2 = (await client.chat({ messages: user("b") }).catch((e: unknown) => e)) as LlmError;
    expect(e2.code).toBe("invalid_response");
    expect(e2.message).toContain("non-JSON");
    expect(server.requestCount({ messages: user("b"), model: "m" })).toBe(3);
    server.clearFaults();
    // Some servers send an error object with status 200.
    server.failNext(5, { status: 200, body: '{"error": {"message": "model overloaded", "type": "server_error"}}' });
    const e3 = (await client.chat({ messages: user("c") }).catch((e: unknown) => e)) as LlmError;
    expect(e3.message).toMatch(/error body: model overloaded.*last status 200/);
    expect(e3.attempts).toBe(3);
    server.clearFaults();
    server.failNext(1, { status: 200, body: '{"error": "transient"}' });
    expect((await client.chat({ messages: user("d") })).attempts).toBe(2);
    // A 200 whose choices are malformed is not taken as a reply.
    server.failNext(5, { status: 200, body: '{"choices": [{"message": {"content": 5}}]}' });
    const e4 = (await client.chat({ messages: user("e") }).catch((e: unknown) => e)) as LlmError;
    expect(e4.code).toBe("invalid_response");
    expect(e4.message).toContain("not a chat completion");
    server.clearFaults();
    server.failNext(1, { status: 200, body: '{"choices": [{"message": {"content": "ok"}}]}' });
    const plain = await client.chat({ messages: user("f") });
    expect([plain.text, plain.finishReason, plain.response.choices[0]!.index, plain.response.choices[0]!.message.role]).toEqual(["ok", null, 0, "assistant"]);
    await client.close();
  });

  it("times out a hung request, retries, and reports the timeout", async () => {
    server.failNext(2, { hang: true });
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", timeoutMs: 150, maxRetries: 1, retryBaseDelayMs: 1 });
    const e = (await client.chat({ messages: user("slow") }).catch((x: unknown) => x)) as LlmError;
    expect(e.code).toBe("timeout");
    expect(e.attempts).toBe(2);
    expect(e.message).toContain("timed out after 150 ms");
    await client.close();
  });

  it("reports an unreachable endpoint as a network error", async () => {
    const dead = await StandInServer.start();
    const url = dead.url;
    await dead.close();
    const client = new OpenAIClient({ baseUrl: url, model: "m", maxRetries: 1, retryBaseDelayMs: 1 });
    const e = (await client.chat({ messages: user("x") }).catch((x: unknown) => x)) as LlmError;
    expect(e.code).toBe("network");
    expect(e.message).toContain(url);
    expect(e.message).toContain("no HTTP status received");
    await client.close();
  });

  it("serves a repeated request from the on-disk cache, across client instances", async () => {
    const cacheDir = join(dir, "cache1");
    const a = new OpenAIClient({ baseUrl: server.url, model: "m", cache: cacheDir });
    const r1 = await a.chat({ messages: user("cache me"), temperature: 0 });
    const r2 = await a.chat({ messages: user("cache me"), temperature: 0 });
    expect([r1.cached, r2.cached]).toEqual([false, true]);
    const b = new OpenAIClient({ baseUrl: server.url, model: "m", cache: cacheDir });
    const r3 = await b.chat({ messages: user("cache me"), temperature: 0 });
    expect(r3.cached).toBe(true);
    expect(r3.text).toBe("echo: cache me");
    // A salt makes a distinct entry (sample 2 of the same prompt).
    const r4 = await b.chat({ messages: user("cache me"), temperature: 0 }, { cacheSalt: "sample-2" });
    expect(r4.cached).toBe(false);
    expect(server.requestCount({ messages: user("cache me"), temperature: 0, model: "m" })).toBe(2);
    await Promise.all([a.close(), b.close()]);
  });

  it("sends concurrent identical requests once", async () => {
    server.setLatency(30);
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", cache: join(dir, "cache2") });
    const rs = await Promise.all(Array.from({ length: 5 }, () => client.chat({ messages: user("same") })));
    expect(rs.map((r) => r.text)).toEqual(Array(5).fill("echo: same"));
    expect(server.totals.received).toBe(1);
    await client.close();
  });

  it("keeps to a requests-per-minute limit (token bucket, one second of burst)", async () => {
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", maxConcurrency: 64, requestsPerMinute: 1200 });
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.chat({ messages: user(`r${i}`) })));
    const elapsed = performance.now() - t0;
    // 20 in the burst, 20 more at 20/s.
    expect(elapsed).toBeGreaterThanOrEqual(900);
    const ts = server.log.map((l) => l.t).sort((x, y) => x - y);
    for (let i = 0; i < ts.length; i++) {
      const inWindow = ts.filter((t) => t >= ts[i]! && t < ts[i]! + 500).length;
      expect(inWindow).toBeLessThanOrEqual(20 + 10 + 1);
    }
    await client.close();
  });

  it("keeps to a tokens-per-minute limit using the server's usage", async () => {
    server.setReply(() => "a b c d e f g h i j");
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", maxConcurrency: 16, tokensPerMinute: 6000 });
    const t0 = performance.now();
    // Each exchange ~ 4 prompt + 10 completion tokens; charged estimate includes max_tokens 10.
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.chat({ messages: user(`t${i}`), max_tokens: 10 })));
    // 100 tokens/s, burst 100: 20 × ~14 = 280 tokens need ≥ ~1.5 s.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1200);
    await client.close();
  });

  it("rides out a 429 storm: pauses on Retry-After instead of hammering", async () => {
    server.failFor(1200, { status: 429, retryAfterS: 1 });
    const client = new OpenAIClient({ baseUrl: server.url, model: "m", maxConcurrency: 8, maxRetries: 6, retryBaseDelayMs: 50 });
    const rs = await Promise.all(Array.from({ length: 24 }, (_, i) => client.chat({ messages: user(`s${i}`) })));
    expect(rs).toHaveLength(24);
    expect(server.totals.completed).toBe(24);
    // Each request is sent once in the storm's first second, maybe once more at its edge, then succeeds.
    expect(server.totals.faults).toBeLessThanOrEqual(24 * 2);
    await client.close();
  });
});

describe("structured output", () => {
  const schema = { type: "object", properties: { answer: { type: "string" }, score: { type: "integer", minimum: 1 } }, required: ["answer", "score"], additionalProperties: false };

  it("sends response_format json_schema and validates the reply", async () => {
    server.setReply((c) => {
      expect((c.body.response_format as { type: string }).type).toBe("json_schema");
      return '{"answer": "4", "score": 3}';
    });
    const client = new OpenAIClient({ baseUrl: server.url, model: "m" });
    const r = await chatJson<{ answer: string; score: number }>(client, { messages: user("2+2") }, { schema });
    expect(r.value).toEqual({ answer: "4", score: 3 });
    expect(r.tries).toBe(1);
    await client.close();
  });

  it("repairs an invalid reply by showing the model the errors", async () => {
    let n = 0;
    server.setReply((c) => {
      n++;
      if (n === 1) return "Sure! The answer is four.";
      if (n === 2) return '```json\n{"answer": "4"}\n```';
      expect(c.kind === "chat" && c.lastUser).toContain("did not match");
      return '{"answer": "4", "score": 2}';
    });
    const client = new OpenAIClient({ baseUrl: server.url, model: "m" });
    const r = await chatJson(client, { messages: user("2+2") }, { schema });
    expect(r.tries).toBe(3);
    expect(r.value).toEqual({ answer: "4", score: 2 });
    await client.close();
  });

  it("throws StructuredOutputError when repairs run out", async () => {
    server.setReply(() => "no json here");
    const client = new OpenAIClient({ baseUrl: server.url, model: "m" });
    const e = await chatJson(client, { messages: user("x") }, { schema, maxRepairs: 1 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StructuredOutputError);
    expect((e as StructuredOutputError).reply).toBe("no json here");
    await client.close();
  });
});

describe("sseData", () => {
  it("reassembles events split across chunks, CRLF and multi-line data", async () => {
    async function* chunks() {
      yield new TextEncoder().encode('data: {"a"');
      yield new TextEncoder().encode(':1}\r');
      yield new TextEncoder().encode("\n\r\n: comment\n");
      yield "data: line1\ndata: line2\n\n";
      yield "event: x\ndata: [DONE]\n\n";
    }
    const out: string[] = [];
    for await (const d of sseData(chunks())) out.push(d);
    expect(out).toEqual(['{"a":1}', "line1\nline2", "[DONE]"]);
  });
});

describe("requestHash", () => {
  it("ignores key order and undefined members", () => {
    expect(requestHash({ a: 1, b: [1, { c: 2, d: undefined }] })).toBe(requestHash({ b: [1, { c: 2 }], a: 1 }));
    expect(requestHash({ a: 1 })).not.toBe(requestHash({ a: 2 }));
  });
});
