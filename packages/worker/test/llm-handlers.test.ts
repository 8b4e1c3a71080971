import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ArtifactKind, DataRef, Job, Usage } from "@nexa/core";
import { StandInServer, type StandInCall } from "@nexa/llm";
import { ForgeClient } from "@nexa/sdk";
import { JobFailure, type HandlerContext } from "../src/handler.js";
import { distillHandler } from "../src/handlers/distill.js";
import { evaluateHandler } from "../src/handlers/evaluate.js";
import { generateHandler } from "../src/handlers/generate.js";
import { judgeHandler } from "../src/handlers/judge.js";

let server: StandInServer;
let root: string;
let n = 0;

beforeAll(async () => {
  server = await StandInServer.start();
  root = await mkdtemp(join(tmpdir(), "nexa-llm-handlers-"));
});
afterAll(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});
beforeEach(() => {
  server.reset();
  server.setLatency(0);
  server.setReply((c) => (c.kind === "chat" ? `echo: ${c.lastUser}` : ""));
});

const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;

interface Harness {
  ctx: HandlerContext;
  usage: Partial<Usage>[];
  annotations: Record<string, unknown>;
  kinds: Record<string, ArtifactKind>;
  logs: string[];
  dirs: { workdir: string; outputsDir: string; checkpointDir: string; inputsDir: string };
}

/** A hand-built handler context: real folders, inputs copied from local files, secrets from a map. */
async function harness(
  type: Job["type"],
  spec: Record<string, unknown>,
  inputs: Record<string, string>,
  opts: { signal?: AbortSignal; checkpointDir?: string; secrets?: Record<string, string>; attempt?: number } = {},
): Promise<Harness> {
  const base = join(root, `attempt${++n}`);
  const dirs = { workdir: base, outputsDir: join(base, "outputs"), checkpointDir: opts.checkpointDir ?? join(base, "checkpoints"), inputsDir: join(base, "inputs") };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  const h: Harness = { usage: [], annotations: {}, kinds: {}, logs: [], dirs, ctx: undefined as unknown as HandlerContext };
  const now = new Date().toISOString();
  const job = {
    id: "job_test",
    type,
    name: null,
    status: "running",
    spec,
    priority: 0,
    project: "default",
    attempt: opts.attempt ?? 1,
    max_attempts: 3,
    created_at: now,
    started_at: now,
    finished_at: null,
    run_after: null,
    worker_id: "w1",
    outputs: null,
    error: null,
    cancel_requested: false,
    waiting_reason: null,
    workflow_run_id: null,
  } as unknown as Job;
  h.ctx = {
    job,
    lease: { id: "lease_1", attempt: opts.attempt ?? 1, expires_at: now },
    attempt: opts.attempt ?? 1,
    ...dirs,
    resumed: opts.checkpointDir !== undefined,
    signal: opts.signal ?? new AbortController().signal,
    graceMs: 5000,
    log: (line) => h.logs.push(line),
    metric: () => undefined,
    fetchInput: async (ref: DataRef, name: string) => {
      const src = inputs[ref];
      if (!src) throw new JobFailure("input_missing", `no input ${ref}`, { retryable: false });
      const dst = join(dirs.inputsDir, name);
      await cp(src, dst);
      return dst;
    },
    secret: (name) => opts.secrets?.[name],
    addUsage: (u) => h.usage.push(u),
    annotate: (f) => Object.assign(h.annotations, f),
    setOutputKind: (p, k) => {
      h.kinds[p] = k;
    },
    api: new ForgeClient({ url: "http://127.0.0.1:9", apiKey: "nxk_test" }),
  };
  return h;
}

async function jsonl(rows: Record<string, unknown>[]): Promise<string> {
  const p = join(root, `data${++n}.jsonl`);
  await writeFile(p, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return p;
}
const readLines = async (p: string) => (await readFile(p, "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const tokensOf = (h: Harness) => h.usage.reduce((a, u) => a + (u.tokens_in ?? 0) + (u.tokens_out ?? 0), 0);

describe("evaluate handler", () => {
  it("writes samples.jsonl and report.json with the requested metrics and reports token usage", async () => {
    server.setReply((c) => (c.kind === "chat" ? ({ "2+2": "4", "capital of France": "Paris", "color of sky": "green" } as Record<string, string>)[c.lastUser] ?? "?" : ""));
    const ds = await jsonl([
      { id: "a", prompt: "2+2", answer: "4" },
      { id: "b", prompt: "capital of France", answer: ["Paris", "paris, France"] },
      { id: "c", prompt: "color of sky", answer: "blue" },
    ]);
    const h = await harness("evaluate", { endpoint: { base_url: server.url, model: "m" }, dataset: DIGEST("a"), metrics: ["exact_match", "f1", "bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL"] }, { [DIGEST("a")]: ds });
    await evaluateHandler(h.ctx);
    const report = JSON.parse(await readFile(join(h.dirs.outputsDir, "report.json"), "utf8")) as { metrics: Record<string, number> };
    expect(report.metrics.exact_match).toBeCloseTo(2 / 3, 12);
    expect(Object.keys(report.metrics).sort()).toEqual(["bleu", "chrf", "exact_match", "f1", "rouge1", "rouge2", "rougeL", "ter"]);
    const samples = await readLines(join(h.dirs.outputsDir, "samples.jsonl"));
    expect(samples.map((s) => [s.id, s.prediction])).toEqual([
      ["a", "4"],
      ["b", "Paris"],
      ["c", "green"],
    ]);
    expect(h.kinds).toMatchObject({ "report.json": "report", "samples.jsonl": "dataset" });
    expect(tokensOf(h)).toBeGreaterThan(0);
    expect(h.annotations.endpoint).toMatchObject({ base_url: server.url, model: "m" });
  });

  it("fails with a non-retryable invalid_spec for a bad spec", async () => {
    const h = await harness("evaluate", { endpoint: { model: "m" }, dataset: DIGEST("a"), metrics: ["nope"] }, {});
    const e = (await evaluateHandler(h.ctx).catch((x: unknown) => x)) as JobFailure;
    expect(e).toBeInstanceOf(JobFailure);
    expect(e.code).toBe("invalid_spec");
    expect(e.retryable).toBe(false);
    expect(e.message).toContain("base_url");
  });

  it("resolves api_key_secret on the worker and names a missing secret without leaking a key", async () => {
    const locked = await StandInServer.start({ apiKey: "sk-live-123" });
    try {
      const ds = await jsonl([{ prompt: "x", answer: "echo: x" }]);
      const spec = { endpoint: { base_url: locked.url, model: "m", api_key_secret: "PROVIDER_KEY" }, dataset: DIGEST("b"), metrics: ["exact_match"] };
      const ok = await harness("evaluate", spec, { [DIGEST("b")]: ds }, { secrets: { PROVIDER_KEY: "sk-live-123" } });
      await evaluateHandler(ok.ctx);
      expect(locked.totals.completed).toBe(1);
      const missing = await harness("evaluate", spec, { [DIGEST("b")]: ds });
      const e = (await evaluateHandler(missing.ctx).catch((x: unknown) => x)) as JobFailure;
      expect(e.message).toContain("PROVIDER_KEY");
      const wrong = await harness("evaluate", spec, { [DIGEST("b")]: ds }, { secrets: { PROVIDER_KEY: "sk-wrong" } });
      const e2 = (await evaluateHandler(wrong.ctx).catch((x: unknown) => x)) as JobFailure;
      expect(e2.code).toBe("llm_request_failed");
      expect(e2.retryable).toBe(false);
      expect(e2.message).toContain("last status 401");
      expect(JSON.stringify([e.message, e2.message, ok.logs, wrong.logs])).not.toContain("sk-");
    } finally {
      await locked.close();
    }
  });
});

describe("evaluate against a Forge deployment by name", () => {
  it("goes through the control plane's gateway with the worker's key", async () => {
    const ds = await jsonl([{ prompt: "hi", answer: "echo: hi" }]);
    const h = await harness("evaluate", { endpoint: { deployment: "qwen-ft", model: "qwen-ft" }, dataset: DIGEST("e"), metrics: ["exact_match"] }, { [DIGEST("e")]: ds });
    // The control plane's URL: the stand-in plays the gateway at /v1/gateway.
    const origin = new URL(server.url).origin;
    (h.ctx as { api: ForgeClient }).api = new ForgeClient({ url: origin, apiKey: "nxk_worker_key" });
    await evaluateHandler(h.ctx);
    expect(server.lastAuthorization).toBe("Bearer nxk_worker_key");
    expect(server.requestCount({ model: "qwen-ft", messages: [{ role: "user", content: "hi" }], temperature: 0 })).toBe(1);
    const report = JSON.parse(await readFile(join(h.dirs.outputsDir, "report.json"), "utf8")) as { metrics: Record<string, number> };
    expect(report.metrics.exact_match).toBe(1);
  });
});

describe("generate handler", () => {
  const topics = Array.from({ length: 12 }, (_, i) => `topic${i}`);

  it("is killed mid-way, resumed by another worker, and no completed sample is requested twice", async () => {
    server.setLatency(15);
    const ac = new AbortController();
    let replies = 0;
    server.setReply((c) => {
      // The worker is preempted while its 10th reply is being produced; requests in flight finish.
      if (++replies === 10) ac.abort("preempted");
      return c.kind === "chat" ? JSON.stringify({ title: `About ${c.lastUser}`, words: c.lastUser.split(" ").length }) : "";
    });
    const spec = {
      endpoint: { base_url: server.url, model: "gen", max_concurrency: 4 },
      template: "Write about {{ topic }} in a {{ style }} style",
      variables: { topic: topics, style: ["terse", "florid"] },
      samples_per_prompt: 1,
      output_schema: { type: "object", properties: { title: { type: "string" }, words: { type: "integer" } }, required: ["title", "words"] },
    };
    const first = await harness("generate", spec, {}, { signal: ac.signal });
    const e = (await generateHandler(first.ctx).catch((x: unknown) => x)) as JobFailure;
    expect(e).toBeInstanceOf(JobFailure);
    expect(e.kind).toBe("preempted");
    const doneBefore = server.totals.completed;
    // The 10th reply and the others in flight (at most 4 at once) completed; nothing new was started.
    expect(doneBefore).toBeGreaterThanOrEqual(10);
    expect(doneBefore).toBeLessThanOrEqual(13);

    // The runtime uploads complete checkpoint folders and restores the newest on another worker.
    const folders = (await readdir(first.dirs.checkpointDir)).filter((f) => f.startsWith("progress-")).sort();
    const newest = folders.at(-1)!;
    await expect(readFile(join(first.dirs.checkpointDir, newest, "COMPLETE"), "utf8")).resolves.toBe("");
    const restored = join(root, `restored${++n}`);
    await cp(join(first.dirs.checkpointDir, newest), join(restored, newest), { recursive: true });

    const second = await harness("generate", spec, {}, { checkpointDir: restored, attempt: 2 });
    await generateHandler(second.ctx);
    const rows = await readLines(join(second.dirs.outputsDir, "dataset.jsonl"));
    expect(rows).toHaveLength(24);
    expect(new Set(rows.map((r) => r.prompt)).size).toBe(24);
    expect((rows[0]!.data as { title: string }).title).toBe(`About ${rows[0]!.prompt as string}`);
    // Every distinct request was answered exactly once across both attempts.
    expect(server.totals.completed).toBe(24);
    for (const count of server.completedByHash().values()) expect(count).toBe(1);
    expect(second.logs.join("\n")).toMatch(/resuming: \d+ of 24/);
  });

  it("repairs replies that fail the output schema, drops ones that never pass, and removes near-duplicates", async () => {
    const tries = new Map<string, number>();
    server.setReply((c) => {
      if (c.kind !== "chat") return "";
      const first = c.body.messages.find((m) => m.role === "user")!.content as string;
      const t = (tries.get(first) ?? 0) + 1;
      tries.set(first, t);
      if (first.includes("topic0")) return "not json, ever";
      if (first.includes("topic1") && t === 1) return '{"text": 5}';
      // topic2 and topic3 produce the same long text: near-duplicates.
      // Distinct in letters: MinHash's text normalisation maps digits to 0, so "topic1" and "topic4" would match.
      const distinct = first.replace(/\d/g, (d) => "abcdefghij"[Number(d)]!);
      const body = first.includes("topic2") || first.includes("topic3") ? "the same long generated paragraph about many things in the world today" : `unique text number ${distinct}`;
      return JSON.stringify({ text: body });
    });
    const spec = {
      endpoint: { base_url: server.url, model: "gen" },
      template: "Write about {{ topic }}",
      variables: { topic: topics.slice(0, 5) },
      output_schema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
      max_repairs: 1,
      dedup: { threshold: 0.8 },
    };
    const h = await harness("generate", spec, {});
    await generateHandler(h.ctx);
    const rows = await readLines(join(h.dirs.outputsDir, "dataset.jsonl"));
    expect(rows.map((r) => r.prompt)).toEqual(["Write about topic1", "Write about topic2", "Write about topic4"]);
    const report = JSON.parse(await readFile(join(h.dirs.outputsDir, "report.json"), "utf8")) as Record<string, number>;
    expect(report).toMatchObject({ requested: 5, invalid: 1, duplicates_removed: 1, written: 3 });
    expect(tries.get("Write about topic1")).toBe(2);
  });

  it("removes near-duplicates with MinHash LSH: one changed word goes, the threshold and short outputs are honoured", async () => {
    // Letters only: the MinHash text normalisation (datatrove's simplify_text) maps every digit to 0.
    const word = (prefix: string, i: number) => prefix + String(i).replace(/\d/g, (d) => "abcdefghij"[Number(d)]!);
    const words = Array.from({ length: 120 }, (_, i) => word("w", i));
    const long = words.join(" ");
    const changed = [...words.slice(0, 60), "CHANGED", ...words.slice(61)].join(" ");
    const other = Array.from({ length: 120 }, (_, i) => word("o", i)).join(" ");
    const replies: Record<string, string> = { a: long, b: changed, c: other, d: "short reply", e: "short   reply" };
    server.setReply((c) => (c.kind === "chat" ? replies[c.lastUser.slice(-1)]! : ""));
    const run = async (dedup: Record<string, unknown>) => {
      const h = await harness("generate", { endpoint: { base_url: server.url, model: "gen" }, template: "Write {{ k }}", variables: { k: Object.keys(replies) }, dedup }, {});
      await generateHandler(h.ctx);
      const rows = await readLines(join(h.dirs.outputsDir, "dataset.jsonl"));
      const report = JSON.parse(await readFile(join(h.dirs.outputsDir, "report.json"), "utf8")) as Record<string, unknown>;
      return { prompts: rows.map((r) => r.prompt), report };
    };
    const loose = await run({ threshold: 0.8 });
    // a and b (Jaccard of 5-gram shingles ≈ 0.92) are one cluster; the short replies are equal once spaces are normalised.
    expect(loose.prompts).toHaveLength(3);
    expect(loose.prompts).toContain("Write c");
    expect(loose.prompts.filter((p) => p === "Write a" || p === "Write b")).toHaveLength(1);
    expect(loose.prompts.filter((p) => p === "Write d" || p === "Write e")).toHaveLength(1);
    expect(loose.report).toMatchObject({ duplicates_removed: 2, written: 3, dedup: { method: "minhash_lsh", threshold: 0.8, num_buckets: 14, hashes_per_bucket: 8, n_grams: 5, below_threshold: 0 } });
    // A threshold above their estimated similarity keeps both: the collision is counted, not removed.
    const strict = await run({ threshold: 0.99 });
    expect(strict.prompts).toEqual(["Write a", "Write b", "Write c", "Write d"]);
    expect(strict.report).toMatchObject({ duplicates_removed: 1, dedup: { below_threshold: 1 } });
  });

  it("rejects bad dedup parameters naming the field", async () => {
    const h = await harness("generate", { endpoint: { base_url: server.url, model: "gen" }, template: "x", dedup: { num_buckets: 0, threshold: 2 } }, {});
    const err = await generateHandler(h.ctx).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailure);
    expect((err as JobFailure).message).toMatch(/dedup\.num_buckets/);
    expect((err as JobFailure).message).toMatch(/dedup\.threshold/);
  });

  it("rides out a 429 storm while staying inside its requests-per-minute limit", async () => {
    server.failFor(800, { status: 429, retryAfterS: 1 });
    const spec = {
      endpoint: { base_url: server.url, model: "gen", max_concurrency: 16, requests_per_minute: 1200, max_retries: 8 },
      template: "Write about {{ topic }}",
      variables: { topic: topics },
      samples_per_prompt: 2,
      sampling: { seed: 7, temperature: 0.9 },
    };
    const h = await harness("generate", spec, {});
    await generateHandler(h.ctx);
    expect((await readLines(join(h.dirs.outputsDir, "dataset.jsonl"))).length).toBe(24);
    // 1200 rpm = 20/s with one second of burst: no 1 s window may hold more than 20 + 20 requests.
    const ts = server.log.map((l) => l.t).sort((a, b) => a - b);
    for (const t of ts) expect(ts.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(41);
    expect(server.totals.faults).toBeGreaterThan(0);
    expect(server.totals.completed).toBe(24);
  });
});

describe("distill handler", () => {
  it("keeps judged answers above the threshold as chat SFT data and records parse failures", async () => {
    server.setReply((c: StandInCall) => {
      if (c.kind !== "chat") return "";
      const sys = c.body.messages[0]?.content;
      if (typeof sys === "string" && sys.includes("strict, fair evaluator")) {
        if (c.lastUser.includes("GOOD")) return '{"scores": {"accuracy": {"score": 9, "reason": "correct"}, "style": {"score": 8, "reason": "clear"}}}';
        if (c.lastUser.includes("BAD")) return '{"scores": {"accuracy": {"score": 2, "reason": "wrong"}, "style": {"score": 8, "reason": "clear"}}}';
        return "cannot judge";
      }
      return c.lastUser.startsWith("q1") ? "GOOD answer" : c.lastUser.startsWith("q2") ? "BAD answer" : "UNCLEAR answer";
    });
    const ds = await jsonl([{ prompt: "q1: what is DNS?" }, { prompt: "q2: what is TCP?" }, { prompt: "q3: what is UDP?" }]);
    const spec = {
      teacher: { base_url: server.url, model: "teacher-70b" },
      prompts: DIGEST("c"),
      system: "You are helpful.",
      sampling: { temperature: 0.2 },
      judge: {
        endpoint: { base_url: server.url, model: "judge" },
        rubric: [
          { name: "accuracy", description: "Factually right", weight: 2 },
          { name: "style", description: "Clear", weight: 1 },
        ],
        threshold: 7,
        max_parse_retries: 1,
      },
    };
    const h = await harness("distill", spec, { [DIGEST("c")]: ds });
    await distillHandler(h.ctx);
    const sft = await readLines(join(h.dirs.outputsDir, "sft.jsonl"));
    expect(sft).toHaveLength(1);
    expect(sft[0]!.messages).toEqual([
      { role: "system", content: "You are helpful." },
      { role: "user", content: "q1: what is DNS?" },
      { role: "assistant", content: "GOOD answer" },
    ]);
    expect((sft[0]!.metadata as { judge_score: number }).judge_score).toBeCloseTo((2 * 9 + 8) / 3, 12);
    const judgments = await readLines(join(h.dirs.outputsDir, "judgments.jsonl"));
    expect(judgments.map((j) => (j.verdict as { status: string }).status)).toEqual(["ok", "ok", "parse_failure"]);
    const report = JSON.parse(await readFile(join(h.dirs.outputsDir, "report.json"), "utf8")) as Record<string, number>;
    expect(report).toMatchObject({ prompts: 3, kept: 1, rejected: 2, judge_parse_failures: 1 });
    expect(h.annotations.teacher).toMatchObject({ model: "teacher-70b", base_url: server.url, sampling: { temperature: 0.2 } });
  });
});

describe("judge handler (audit judge mode)", () => {
  it("keeps records whose rubric verdict passes, from an audit spec's options.llm_judge", async () => {
    server.setReply((c) => {
      if (c.kind !== "chat") return "";
      const score = c.lastUser.includes("excellent") ? 9 : 3;
      return JSON.stringify({ scores: { quality: { score, reason: "because" } } });
    });
    const ds = await jsonl([
      { id: 1, text: "an excellent record" },
      { id: 2, text: "a poor record" },
      { id: 3, text: "another excellent one" },
    ]);
    const spec = { dataset: DIGEST("d"), steps: ["llm_judge"], options: { llm_judge: { judge: { endpoint: { base_url: server.url, model: "judge" }, rubric: [{ name: "quality", description: "Is it good?" }], threshold: 6 } } } };
    const h = await harness("audit", spec, { [DIGEST("d")]: ds });
    await judgeHandler(h.ctx);
    expect((await readLines(join(h.dirs.outputsDir, "kept.jsonl"))).map((r) => r.id)).toEqual([1, 3]);
    expect((await readLines(join(h.dirs.outputsDir, "removed.jsonl"))).map((r) => r.id)).toEqual([2]);
    const report = JSON.parse(await readFile(join(h.dirs.outputsDir, "report.json"), "utf8")) as Record<string, unknown>;
    expect(report).toMatchObject({ records: 3, kept: 2, removed: 1, parse_failures: 0 });
  });
});
