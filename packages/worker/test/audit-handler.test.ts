import { cp, mkdir, mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ArtifactKind, DataRef, Job } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { describe, expect, it } from "vitest";
import { JobFailure, type HandlerContext } from "../src/handler.js";
import { auditHandler } from "../src/handlers/audit.js";

const SAMPLE = fileURLToPath(new URL("../../data/test/fixtures/datatrove/corpus_sample.jsonl", import.meta.url));
const MINHASH_REMOVED = fileURLToPath(new URL("../../data/test/fixtures/datatrove/golden_minhash_removed.txt", import.meta.url));
const DIGEST = `sha256:${"a".repeat(64)}`;

interface Harness {
  ctx: HandlerContext;
  kinds: Record<string, ArtifactKind>;
  logs: string[];
  metrics: { name: string; value: number }[];
  outputsDir: string;
}

/** A hand-built handler context with real folders; the dataset input is copied from a local file. */
async function harness(spec: Record<string, unknown>, input: string, signal?: AbortSignal): Promise<Harness> {
  const base = await mkdtemp(join(tmpdir(), "nexa-audit-handler-"));
  const dirs = { workdir: base, outputsDir: join(base, "outputs"), checkpointDir: join(base, "checkpoints"), inputsDir: join(base, "inputs") };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  const now = new Date().toISOString();
  const h: Harness = { kinds: {}, logs: [], metrics: [], outputsDir: dirs.outputsDir, ctx: undefined as unknown as HandlerContext };
  h.ctx = {
    job: { id: "job_audit", type: "audit", spec, attempt: 1, status: "running", created_at: now } as unknown as Job,
    lease: { id: "lease_1", attempt: 1, expires_at: now },
    attempt: 1,
    ...dirs,
    resumed: false,
    signal: signal ?? new AbortController().signal,
    graceMs: 5000,
    log: (line) => h.logs.push(line),
    metric: (name, _step, value) => h.metrics.push({ name, value }),
    fetchInput: async (ref: DataRef, name: string) => {
      if (ref !== DIGEST) throw new JobFailure("input_missing", `no input ${ref}`, { retryable: false });
      const dst = join(dirs.inputsDir, name);
      await cp(input, dst);
      return dst;
    },
    secret: () => undefined,
    addUsage: () => undefined,
    annotate: () => undefined,
    setOutputKind: (p, k) => {
      h.kinds[p] = k;
    },
    api: new ForgeClient({ url: "http://127.0.0.1:9", apiKey: "nxk_test" }),
  };
  return h;
}

const lines = async (p: string) => (await readFile(p, "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe("audit handler", () => {
  it("writes kept / removed / report with their kinds; MinHash removals match datatrove's", async () => {
    const h = await harness({ dataset: DIGEST, steps: ["minhash"] }, SAMPLE);
    await auditHandler(h.ctx);
    expect(h.kinds).toEqual({ "kept.jsonl": "dataset", "removed.jsonl": "dataset", "report.json": "report" });
    const removed = await lines(join(h.outputsDir, "removed.jsonl"));
    const want = (await readFile(MINHASH_REMOVED, "utf8")).trim().split("\n").sort();
    expect(removed.map((r) => r.id).sort()).toEqual(want);
    expect(removed.every((r) => r.filter === "minhash" && r.reason === "minhash_duplicate")).toBe(true);
    expect((await lines(join(h.outputsDir, "kept.jsonl"))).length).toBe(589 - 29);
    const report = JSON.parse(await readFile(join(h.outputsDir, "report.json"), "utf8"));
    expect(report.docs_in).toBe(589);
    expect(h.metrics.find((m) => m.name === "removed")?.value).toBe(29);
    expect(h.logs.some((l) => l.includes("589 documents"))).toBe(true);
  });

  it("fails with input_invalid naming the line and field for a bad record, and spec_invalid for a bad spec", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nexa-audit-bad-"));
    await writeFile(join(dir, "d.jsonl"), '{"id":1,"text":"ok"}\n{"id":2}\n');
    const h = await harness({ dataset: DIGEST, steps: ["length"] }, join(dir, "d.jsonl"));
    const e = (await auditHandler(h.ctx).catch((x: unknown) => x)) as JobFailure;
    expect(e).toBeInstanceOf(JobFailure);
    expect(e.code).toBe("input_invalid");
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/line 2, field "text"/);
    const bad = await harness({ dataset: DIGEST, steps: ["nope"] }, join(dir, "d.jsonl"));
    const e2 = (await auditHandler(bad.ctx).catch((x: unknown) => x)) as JobFailure;
    expect(e2.code).toBe("spec_invalid");
  });

  it("stops promptly on abort and leaves no outputs", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nexa-audit-abort-"));
    await writeFile(join(dir, "d.jsonl"), Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ id: i, text: `Sentence ${i} about the cat and the dog. `.repeat(8) })).join("\n"));
    const ac = new AbortController();
    const h = await harness({ dataset: DIGEST, steps: ["gopher_quality", "minhash"] }, join(dir, "d.jsonl"), ac.signal);
    // Abort at the engine's first progress report, i.e. mid-run: a timer raced the engine, which
    // got fast enough to finish 4,000 documents before it fired.
    const metric = h.ctx.metric;
    h.ctx.metric = (name, step, value) => {
      metric(name, step, value);
      if (name === "docs_read" && !ac.signal.aborted) ac.abort(new Error("cancel requested"));
    };
    const t0 = Date.now();
    const e = (await auditHandler(h.ctx).catch((x: unknown) => x)) as JobFailure;
    expect(e.code).toBe("canceled");
    expect(e.kind).toBe("canceled");
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(await readdir(h.outputsDir)).toEqual([]);
  });
});
