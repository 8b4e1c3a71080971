import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LlmError, OpenAIClient, StandInServer, compareRuns, runEvaluation, type EvalReport, type StandInCall } from "../src/index.js";

interface GoldenCase {
  name: string;
  input: Record<string, unknown>;
  expected: Record<string, unknown>;
}
const golden = JSON.parse(await readFile(new URL("./fixtures/metrics.json", import.meta.url), "utf8")) as GoldenCase[];
const gcase = (name: string) => golden.find((c) => c.name === name)!;

let server: StandInServer;
let dir: string;
let n = 0;
const fresh = () => join(dir, `run${++n}`);

beforeAll(async () => {
  server = await StandInServer.start();
  dir = await mkdtemp(join(tmpdir(), "nexa-llm-eval-"));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  server.reset();
  server.setLatency(0);
});

async function dataset(rows: Record<string, unknown>[]): Promise<string> {
  const p = join(dir, `ds${++n}.jsonl`);
  await writeFile(p, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return p;
}
const answers = (map: Record<string, string>) => (c: StandInCall) => (c.kind === "chat" ? (map[c.lastUser] ?? "unknown") : "");

describe("runEvaluation", () => {
  it("reproduces sacrebleu corpus BLEU/chrF/TER goldens end to end through the stand-in", async () => {
    const c = gcase("corpus_bleu:bleu_sacrebleu_readme_2refs");
    const hyps = c.input.hypotheses as string[];
    const refs = c.input.references as string[][];
    const rows = hyps.map((_, i) => ({ prompt: `q${i}`, answer: refs.map((s) => s[i]) }));
    server.setReply(answers(Object.fromEntries(hyps.map((h, i) => [`q${i}`, h]))));
    const out = fresh();
    const r = await runEvaluation({
      spec: { endpoint: { base_url: server.url, model: "m" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["bleu", "chrf", "ter", "exact_match", "f1"], bootstrap_samples: 200 },
      datasetPath: await dataset(rows),
      outDir: out,
    });
    expect(r.status).toBe("complete");
    const report = JSON.parse(await readFile(join(out, "report.json"), "utf8")) as EvalReport;
    expect(report.metrics.bleu).toBe(c.expected.score);
    expect(report.metrics.chrf).toBe(gcase("corpus_chrf:readme_2refs").expected.score);
    expect(report.metrics.ter).toBe(gcase("corpus_ter:readme_2refs").expected.score);
    expect(report.metric_details.bleu!.signature).toBe(c.expected.signature);
    const ci = report.confidence_intervals.bleu!;
    expect(ci.low).toBeLessThanOrEqual(ci.high);
    const samples = (await readFile(join(out, "samples.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { prediction: string });
    expect(samples.map((s) => s.prediction)).toEqual(hyps);
  });

  it("averages SQuAD EM/F1 and ROUGE per sample (0–1), matching the goldens", async () => {
    const squad = golden.filter((c) => c.name.startsWith("squad:") && c.input.prediction !== undefined);
    const rows = squad.map((c, i) => ({ prompt: `s${i}`, answer: c.input.ground_truths }));
    server.setReply(answers(Object.fromEntries(squad.map((c, i) => [`s${i}`, c.input.prediction as string]))));
    const r = await runEvaluation({
      spec: { endpoint: { base_url: server.url, model: "m" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["exact_match", "f1"], bootstrap_samples: 0 },
      datasetPath: await dataset(rows),
      outDir: fresh(),
    });
    if (r.status !== "complete") throw new Error("incomplete");
    const mean = (k: string) => squad.reduce((a, c) => a + (c.expected[k] as number), 0) / squad.length;
    expect(r.report.metrics.exact_match).toBeCloseTo(mean("exact_match"), 12);
    expect(r.report.metrics.f1).toBeCloseTo(mean("f1"), 12);
    r.samples.forEach((s, i) => expect(s.metrics.f1).toBe(squad[i]!.expected.f1));

    const rg = golden.filter((c) => c.name.startsWith("rouge:"));
    server.setReply(answers(Object.fromEntries(rg.map((c, i) => [`r${i}`, c.input.prediction as string]))));
    const r2 = await runEvaluation({
      spec: { endpoint: { base_url: server.url, model: "m" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["rouge1", "rouge2", "rougeL"], bootstrap_samples: 0 },
      datasetPath: await dataset(rg.map((c, i) => ({ prompt: `r${i}`, answer: c.input.target }))),
      outDir: fresh(),
    });
    if (r2.status !== "complete") throw new Error("incomplete");
    for (const k of ["rouge1", "rouge2", "rougeL"] as const) {
      const m = rg.reduce((a, c) => a + (c.expected[k] as { fmeasure: number }).fmeasure, 0) / rg.length;
      expect(r2.report.metrics[k]).toBeCloseTo(m, 12);
    }
  });

  it("sends each input as one user message at temperature 0 unless set", async () => {
    const seen: StandInCall[] = [];
    server.setReply((c) => {
      seen.push(c);
      return "x";
    });
    const path = await dataset([{ prompt: "hello", answer: "x" }]);
    await runEvaluation({ spec: { endpoint: { base_url: server.url, model: "m" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["exact_match"] }, datasetPath: path, outDir: fresh() });
    await runEvaluation({
      spec: { endpoint: { base_url: server.url, model: "m" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["exact_match"], sampling: { temperature: 0.7 } },
      datasetPath: path,
      outDir: fresh(),
    });
    const b0 = seen[0]!.body as Record<string, unknown>;
    expect(b0.messages).toEqual([{ role: "user", content: "hello" }]);
    expect(b0.temperature).toBe(0);
    expect((seen[1]!.body as Record<string, unknown>).temperature).toBe(0.7);
  });

  it("resumes an interrupted run from its checkpoint without asking again for a finished sample", async () => {
    server.setLatency(20);
    server.setReply(answers({}));
    const rows = Array.from({ length: 30 }, (_, i) => ({ prompt: `p${i}`, answer: "unknown" }));
    const path = await dataset(rows);
    const ckpt = fresh();
    const cache = fresh();
    const ac = new AbortController();
    const spec = { endpoint: { base_url: server.url, model: "m", max_concurrency: 4 }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["exact_match"], bootstrap_samples: 0 };
    let done = 0;
    const first = await runEvaluation({
      spec,
      datasetPath: path,
      outDir: fresh(),
      checkpointDir: ckpt,
      signal: ac.signal,
      onProgress: (d) => {
        done = d;
        if (d === 10) ac.abort(new Error("preempted"));
      },
    });
    expect(first.status).toBe("aborted");
    expect(done).toBeGreaterThanOrEqual(10);
    expect((await readdir(ckpt)).some((d) => d.startsWith("progress-"))).toBe(true);
    // A new attempt, as on another worker: only the checkpoint folder carries over.
    const out = fresh();
    const second = await runEvaluation({ spec, datasetPath: path, outDir: out, checkpointDir: ckpt, cacheDir: cache });
    expect(second.status).toBe("complete");
    if (second.status !== "complete") return;
    expect(second.report.counts.samples).toBe(30);
    expect(second.report.counts.restored).toBeGreaterThanOrEqual(10);
    expect(server.totals.completed).toBe(30);
    for (const c of server.completedByHash().values()) expect(c).toBe(1);
  });

  it("fails with the endpoint, model and status when a sample's requests fail, keeping finished samples", async () => {
    server.setReply(answers({}));
    const rows = Array.from({ length: 6 }, (_, i) => ({ prompt: `f${i}`, answer: "unknown" }));
    const path = await dataset(rows);
    const ckpt = fresh();
    const spec = { endpoint: { base_url: server.url, model: "mf", max_concurrency: 1, max_retries: 1 }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["exact_match"] };
    let calls = 0;
    server.setReply((c) => {
      calls++;
      return c.kind === "chat" ? "unknown" : "";
    });
    // Requests 1-3 succeed, then the server breaks.
    server.setLatency(0);
    const run = runEvaluation({ spec, datasetPath: path, outDir: fresh(), checkpointDir: ckpt, onProgress: (d) => d === 3 && server.failFor(60_000, { status: 500 }) });
    const err = (await run.catch((e: unknown) => e)) as LlmError;
    expect(err).toBeInstanceOf(LlmError);
    expect(err.message).toContain(server.url);
    expect(err.message).toContain("model mf");
    expect(err.message).toContain("last status 500");
    server.clearFaults();
    const again = await runEvaluation({ spec, datasetPath: path, outDir: fresh(), checkpointDir: ckpt });
    expect(again.status).toBe("complete");
    expect(calls).toBe(6);
  });

  it("records judge parse failures explicitly and scores parsable verdicts", async () => {
    server.setReply((c) => {
      if (c.kind !== "chat") return "";
      const sys = c.body.messages[0]?.content as string;
      if (typeof sys === "string" && sys.includes("strict, fair evaluator")) {
        return c.lastUser.includes("good answer") ? '{"scores": {"correct": {"score": 9, "reason": "right"}}}' : "I refuse to use JSON";
      }
      return c.lastUser === "a" ? "good answer" : "bad answer";
    });
    const r = await runEvaluation({
      spec: {
        endpoint: { base_url: server.url, model: "m" },
        dataset: `sha256:${"0".repeat(64)}`,
        metrics: [],
        judge: { endpoint: { base_url: server.url, model: "judge" }, rubric: [{ name: "correct", description: "Is it right?" }], threshold: 7, max_parse_retries: 1 },
      },
      datasetPath: await dataset([{ prompt: "a" }, { prompt: "b" }]),
      outDir: fresh(),
    });
    if (r.status !== "complete") throw new Error("incomplete");
    expect(r.samples[0]!.judge).toMatchObject({ status: "ok", weighted: 9, passed: true });
    expect(r.samples[1]!.judge).toMatchObject({ status: "parse_failure", passed: false, raw: "I refuse to use JSON", tries: 2 });
    expect(r.report.judge).toMatchObject({ mean_score: 9, parse_failures: 1, pass_rate: 0.5, judged: 2 });
  });

  it("scores multiple choice by log-likelihood from echoed prompt logprobs, and checks assertions", async () => {
    // The stand-in likes the tokens of the right options.
    server.setLogprob((tok) => (["Paris", "4"].includes(tok.trim()) ? -0.05 : -3));
    server.setReply((c) => (c.kind === "chat" ? '{"city": "Paris"}' : ""));
    const r = await runEvaluation({
      spec: {
        endpoint: { base_url: server.url, model: "m" },
        dataset: `sha256:${"0".repeat(64)}`,
        metrics: ["multiple_choice"],
        assertions: [{ type: "contains", value: "Paris" }, { type: "json_schema", schema: { type: "object", required: ["country"] } }],
      },
      datasetPath: await dataset([
        { prompt: "Capital of France?", choices: ["Lyon", "Paris", "Nice"], answer: 1 },
        { prompt: "2+2?", choices: ["4", "5"], answer: "5" },
      ]),
      outDir: fresh(),
    });
    if (r.status !== "complete") throw new Error("incomplete");
    expect(r.samples.map((s) => s.predicted_choice)).toEqual([1, 0]);
    expect(r.report.metrics.multiple_choice).toBe(0.5);
    expect(r.report.assertions?.by_assertion.map((a) => a.pass_rate)).toEqual([1, 0]);
    expect(r.samples[0]!.assertions?.[1]).toMatchObject({ passed: false });
  });

  it("compares two runs with a paired bootstrap", async () => {
    const rows = Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, prompt: `c${i}`, answer: `the answer is number ${i}` }));
    const path = await dataset(rows);
    const spec = { endpoint: { base_url: server.url, model: "m" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["exact_match", "bleu"], bootstrap_samples: 100 };
    server.setReply((c) => (c.kind === "chat" ? (Number(c.lastUser.slice(1)) % 4 === 0 ? `the answer is number ${c.lastUser.slice(1)}` : "the answer is not known") : ""));
    const a = fresh();
    await runEvaluation({ spec, datasetPath: path, outDir: a });
    server.setReply((c) => (c.kind === "chat" ? `the answer is number ${c.lastUser.slice(1)}` : ""));
    const b = fresh();
    await runEvaluation({ spec: { ...spec, endpoint: { ...spec.endpoint, model: "m2" } }, datasetPath: path, outDir: b });
    const cmp = await compareRuns(a, b, { samples: 500 });
    expect(cmp.paired).toBe(20);
    expect(cmp.metrics.exact_match).toMatchObject({ a: 0.25, b: 1, delta: 0.75 });
    expect(cmp.metrics.exact_match!.delta_ci!.low).toBeGreaterThan(0.4);
    expect(cmp.metrics.exact_match!.p_value).toBeLessThan(0.01);
    expect(cmp.metrics.bleu!.delta).toBeGreaterThan(0);

    // A pairwise judge that prefers the response naming the right number.
    server.setReply((c) => {
      if (c.kind !== "chat") return "";
      const t = c.lastUser;
      const task = /Task:\nc(\d+)/.exec(t)![1]!;
      const first = t.slice(t.indexOf("Response 1:"), t.indexOf("Response 2:"));
      return JSON.stringify({ winner: first.includes(`number ${task}`) ? (t.slice(t.indexOf("Response 2:")).includes(`number ${task}`) ? "tie" : "1") : "2", reason: "r" });
    });
    const judge = new OpenAIClient({ baseUrl: server.url, model: "judge" });
    const withJudge = await compareRuns(a, b, { samples: 0, judge });
    await judge.close();
    // Run A is right on 5 of 20 (ties), B on all 20.
    expect(withJudge.pairwise).toMatchObject({ a_wins: 0, b_wins: 15, ties: 5, parse_failures: 0, judged: 20 });
    expect(withJudge.pairwise!.b_win_rate).toBeCloseTo((15 + 2.5) / 20, 12);
  });

  it("reports accuracy with scikit-learn-equal classification metrics (golden labels)", async () => {
    const c = golden.find((g) => g.name === "classification:string_labels")!;
    const yt = c.input.y_true as string[];
    const yp = c.input.y_pred as string[];
    server.setReply((call) => (call.kind === "chat" ? ` ${yp[Number(call.lastUser.slice(4))]!.toUpperCase()}\n` : ""));
    const r = await runEvaluation({
      spec: { endpoint: { base_url: server.url, model: "m" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["accuracy"], bootstrap_samples: 0 },
      datasetPath: await dataset(yt.map((t, i) => ({ prompt: `row ${i}`, answer: t }))),
      outDir: fresh(),
    });
    if (r.status !== "complete") throw new Error("incomplete");
    expect(r.report.metrics.accuracy).toBe(c.expected.accuracy);
    expect(r.report.classification!.macro).toEqual(c.expected.macro);
    expect(r.report.classification!.weighted).toEqual(c.expected.weighted);
    expect(r.report.classification!.confusion_matrix).toEqual(c.expected.confusion_matrix);
  });

  it("uses /completions with a chat template for endpoints without a chat API", async () => {
    const prompts: string[] = [];
    server.setReply((c) => {
      if (c.kind !== "completion") throw new Error("expected /completions");
      prompts.push(c.prompt);
      return "Paris<|im_end|>\n<|im_start|>user\nmore";
    });
    const r = await runEvaluation({
      spec: { endpoint: { base_url: server.url, model: "base" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["exact_match"], chat_template: "chatml", system: "Be brief." },
      datasetPath: await dataset([{ prompt: "Capital of France?", answer: "Paris" }]),
      outDir: fresh(),
    });
    if (r.status !== "complete") throw new Error("incomplete");
    expect(prompts[0]).toBe("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n");
    expect(r.samples[0]!.prediction).toBe("Paris");
    expect(r.report.metrics.exact_match).toBe(1);
  });

  it("refuses a dataset row without the input field before sending anything", async () => {
    const e = await runEvaluation({
      spec: { endpoint: { base_url: server.url, model: "m" }, dataset: `sha256:${"0".repeat(64)}`, metrics: ["exact_match"] },
      datasetPath: await dataset([{ prompt: "a", answer: "b" }, { question: "c", answer: "d" }]),
      outDir: fresh(),
    }).catch((x: unknown) => x);
    expect(String(e)).toMatch(/row 2 has no field "prompt"/);
    expect(server.totals.received).toBe(0);
  });
});
