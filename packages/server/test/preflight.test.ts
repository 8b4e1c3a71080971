import { createHash } from "node:crypto";
import { ForgeError, type JobSubmissionInput, type PreflightReport } from "@nexa/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, createOrg, http, postgresAvailable, startTestServer, type TestServer } from "./helpers.js";

const HAVE_PG = await postgresAvailable();
const GIB = 2 ** 30;

// A tiny GPT-2 (632,576 parameters) and Llama-3-70B's shape (70.6 B parameters).
const TINY_GPT = { model_type: "gpt2", n_layer: 2, n_embd: 64, n_head: 4, vocab_size: 8192, n_positions: 128 };
const LLAMA_70B = { model_type: "llama", vocab_size: 128_256, hidden_size: 8192, intermediate_size: 28_672, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8 };
// TinyLlama-1.1B's shape: a full bf16 fine-tune of 2 × 2,048 tokens needs ≈ 26 GiB, more than a 24 GiB L4 holds.
const TINY_LLAMA = { model_type: "llama", vocab_size: 32_000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4 };

const corpus = Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `document ${i}: the quick brown fox jumps over the lazy dog. `.repeat(3) })).join("\n") + "\n";
const sha = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

describe.each(BACKENDS)("preflight on $name", (backend) => {
  const skip = backend.name === "postgres" && !HAVE_PG;
  let t: TestServer;
  let url: string;
  let key: string;
  let dataset: string;
  let tokenizerBlob: string;

  const train = (config: Record<string, unknown>, extra: Partial<JobSubmissionInput> & { spec?: Record<string, unknown> } = {}): JobSubmissionInput =>
    ({
      type: "train",
      ...extra,
      spec: { dataset, model: { config, precision: "fp32" }, pack: { tokenizer: tokenizerBlob, seq_len: 128, loss_on: "all" }, hyperparameters: { max_steps: 40, micro_batch_size: 4 }, ...extra.spec },
    }) as JobSubmissionInput;
  const byName = (r: PreflightReport, name: string) => r.checks.find((c) => c.name === name);

  beforeAll(async () => {
    if (skip) return;
    t = await startTestServer(backend);
    url = t.server.url;
    key = t.server.adminKey!;
    dataset = (await t.client.putBlob(new TextEncoder().encode(corpus))).digest;
    const vocab = Object.fromEntries(Array.from({ length: 8000 }, (_, i) => [`t${i}`, i]));
    tokenizerBlob = (await t.client.putBlob(new TextEncoder().encode(JSON.stringify({ version: "1.0", model: { type: "BPE", vocab, merges: [] }, added_tokens: [{ id: 8000, content: "<|endoftext|>", special: true }] })))).digest;
    await t.client.registerWorker({ name: "gpu-l4", capabilities: { cpus: 8, memory_gb: 32, gpus: [{ name: "NVIDIA L4", memory_gb: 24 }], labels: {} } });
    await t.client.registerWorker({ name: "cpu-box", capabilities: { cpus: 4, memory_gb: 8, gpus: [], labels: {} } });
  });
  afterAll(async () => {
    await t?.close();
  });

  test.skipIf(skip)("a tiny GPT fits the 24 GB GPU worker: pass, with memory, time and cost figures", async () => {
    const r = await t.client.preflight(train(TINY_GPT, { requirements: { gpus: 1 } }));
    expect(r.status, JSON.stringify(r.checks)).toBe("pass");
    expect(r.ok).toBe(true);
    expect(r.checks.map((c) => c.name)).toEqual(["spec", "dataset", "tokenizer", "model_config", "gpu_memory", "duration", "cost"]);
    expect(byName(r, "gpu_memory")!.message).toContain("NVIDIA L4");
    expect(byName(r, "tokenizer")!.message).toMatch(/BPE, 8,001 tokens.*structure only/);
    expect(byName(r, "model_config")!.message).toContain("632,576 parameters");
    expect(byName(r, "dataset")!.message).toContain("all 40 records parse");
    const m = r.estimate.memory!;
    expect(m.per).toBe("gpu");
    expect(m.parameters).toBe(632_576);
    expect(m.total_bytes).toBe(m.weights_bytes + m.gradients_bytes + m.optimizer_bytes + m.activations_bytes + m.overhead_bytes);
    // fp32 full fine-tune: 4 B weights + 4 B gradients + 8 B AdamW moments per parameter.
    expect(m.weights_bytes + m.gradients_bytes + m.optimizer_bytes).toBe(16 * 632_576);
    expect(r.estimate.device).toBe("NVIDIA L4");
    // 40 steps × 4 sequences × 128 tokens.
    expect(r.estimate.tokens).toBe(40 * 4 * 128);
    expect(r.estimate.time_s!).toBeCloseTo(r.estimate.tokens! / r.estimate.tokens_per_s!, 9);
    // The built-in price of an L4 is $0.70 per GPU-hour.
    expect(r.estimate.cost_usd!).toBeCloseTo((r.estimate.time_s! / 3600) * 0.7, 12);
  });

  test.skipIf(skip)("gpus 0 means CPU training: checked against the worker's memory, costed per CPU-hour", async () => {
    const r = await t.client.preflight(train(TINY_GPT));
    expect(r.status, JSON.stringify(r.checks)).toBe("pass");
    const mem = byName(r, "cpu_memory")!;
    expect(mem.status).toBe("pass");
    expect(mem.message).toMatch(/fits gpu-l4 \(32 GiB/);
    expect(r.estimate.memory!.per).toBe("host");
    expect(r.estimate.device).toBe("cpu");
    // 1 GiB for the process (the CUDA context's place on a GPU) plus 10% slack.
    const m = r.estimate.memory!;
    expect(m.overhead_bytes).toBeCloseTo(GIB + 0.1 * (m.weights_bytes + m.gradients_bytes + m.optimizer_bytes + m.activations_bytes), 3);
    expect(m.total_bytes).toBe(m.weights_bytes + m.gradients_bytes + m.optimizer_bytes + m.activations_bytes + m.overhead_bytes);
    // $0.04 per CPU-hour × the 8 cores of the worker it fits.
    expect(r.estimate.cost_usd!).toBeCloseTo((r.estimate.time_s! / 3600) * 8 * 0.04, 12);
  });

  test.skipIf(skip)("a 70B-parameter model cannot fit: preflight fails, and submitting it answers 422 preflight_failed", async () => {
    const sub = train(LLAMA_70B, { requirements: { gpus: 1 }, spec: { model: { config: LLAMA_70B, precision: "bf16" }, pack: { tokenizer: "cl100k_base", seq_len: 2048 } } });
    const r = await t.client.preflight(sub);
    expect(r.status).toBe("fail");
    expect(r.ok).toBe(false);
    const gpu = byName(r, "gpu_memory")!;
    expect(gpu.status).toBe("fail");
    expect(gpu.message).toMatch(/largest GPU has 24 GiB \(NVIDIA L4\)/);
    expect(r.estimate.memory!.parameters).toBeGreaterThan(70e9);
    expect(r.estimate.memory!.total_bytes / GIB).toBeGreaterThan(1000);

    const before = (await t.client.listJobs({ type: "train", limit: 1000 })).items.length;
    const res = await http(url, "POST", "/v1/jobs", { key, body: sub });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("preflight_failed");
    expect(res.json.error.message).toMatch(/gpu_memory: needs/);
    expect(res.json.error.details.find((c: { name: string }) => c.name === "gpu_memory").status).toBe("fail");
    expect((await t.client.listJobs({ type: "train", limit: 1000 })).items.length).toBe(before);
    // The SDK surfaces the code and the checks.
    const err = await t.client.submitJob(sub).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeError);
    expect((err as ForgeError).code).toBe("preflight_failed");
    expect(Array.isArray((err as ForgeError).details)).toBe(true);
  });

  test.skipIf(skip)("the spec's LoRA and gradient checkpointing reach the estimate: a 7B fits the 24 GB GPU only with both", async () => {
    const LLAMA2_7B = { model_type: "llama", vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32 };
    const sub = (lora: boolean, gc: boolean) =>
      train(LLAMA2_7B, {
        requirements: { gpus: 1 },
        spec: { model: { config: LLAMA2_7B, precision: "bf16", ...(lora ? { lora: { r: 8, alpha: 16 } } : {}) }, pack: { tokenizer: "cl100k_base", seq_len: 2048 }, hyperparameters: { max_steps: 10, gradient_checkpointing: gc } },
      });
    const full = await t.client.preflight(sub(false, true));
    expect(byName(full, "gpu_memory")!.status).toBe("fail");
    const loraOnly = await t.client.preflight(sub(true, false));
    expect(byName(loraOnly, "gpu_memory")!.status).toBe("fail");
    const both = await t.client.preflight(sub(true, true));
    expect(byName(both, "gpu_memory")!.status, byName(both, "gpu_memory")!.message).toBe("pass");
    expect(both.estimate.memory!.trainable_parameters).toBe(19_988_480);
    expect(byName(both, "duration")!.message).toContain("4 FLOPs per parameter per token");
  });

  test.skipIf(skip)("the skip flag submits anyway: preflight: false in the body, or X-Nexa-Skip-Preflight: 1", async () => {
    const sub = train(LLAMA_70B, { requirements: { gpus: 1 } });
    const a = await http(url, "POST", "/v1/jobs", { key, body: { ...sub, preflight: false } });
    expect(a.status, a.text).toBe(201);
    expect(a.json.status).toBe("queued");
    expect(a.json.preflight).toBeUndefined();
    const b = await http(url, "POST", "/v1/jobs", { key, body: sub, headers: { "x-nexa-skip-preflight": "1", "idempotency-key": `skip-${backend.name}` } });
    expect(b.status, b.text).toBe(201);
    expect((await t.client.getManifest(b.json.id)).preflight).toBeUndefined();
    // A repeat of that accepted submission is the same job (200), not a preflight failure.
    const again = await http(url, "POST", "/v1/jobs", { key, body: sub, headers: { "idempotency-key": `skip-${backend.name}` } });
    expect(again.status, again.text).toBe(200);
    expect(again.json.id).toBe(b.json.id);
  });

  test.skipIf(skip)("a train job that passes is queued with its checks recorded on the job (answer, manifest, event)", async () => {
    const job = await t.client.submitJob(train(TINY_GPT, { requirements: { gpus: 1 } }));
    expect(job.status).toBe("queued");
    expect(job.preflight!.status).toBe("pass");
    const manifest = await t.client.getManifest(job.id);
    expect(manifest.preflight!.checks.map((c) => c.name)).toContain("gpu_memory");
    const rows = await t.server.ctx.db.selectFrom("job_events").select(["type"]).where("job_id", "=", job.id).orderBy("seq").execute();
    expect(rows.map((r) => r.type)).toEqual(["queued", "preflight"]);
  });

  test.skipIf(skip)("only an offline worker could hold it: warn, and the submission is queued with the warning", async () => {
    const big = await t.client.registerWorker({ name: "h100-spot", capabilities: { cpus: 32, memory_gb: 256, gpus: [{ name: "NVIDIA H100 80GB HBM3", memory_gb: 80 }], labels: {} } });
    await t.client.deregisterWorker(big.id);
    const sub = train(TINY_LLAMA, { requirements: { gpus: 1 }, spec: { model: { config: TINY_LLAMA, precision: "bf16" }, pack: { tokenizer: "cl100k_base", seq_len: 2048 }, hyperparameters: { max_steps: 10, micro_batch_size: 2 } } });
    const r = await t.client.preflight(sub);
    const gpu = byName(r, "gpu_memory")!;
    expect(gpu.status, gpu.message).toBe("warn");
    expect(gpu.message).toMatch(/only an offline worker could hold it.*H100.*h100-spot/);
    expect(r.estimate.device).toBe("NVIDIA H100 80GB HBM3");
    // The tokenizer has more tokens than the config's vocabulary: a warning naming the field.
    expect(byName(r, "model_config")!.status).toBe("warn");
    expect(byName(r, "model_config")!.details!.field).toBe("spec.model.config.vocab_size");
    const job = await t.client.submitJob(sub);
    expect(job.status).toBe("queued");
    expect(job.preflight!.status).toBe("warn");
    expect((await t.client.getManifest(job.id)).preflight!.checks.find((c) => c.name === "gpu_memory")!.status).toBe("warn");
  });

  test.skipIf(skip)("a missing dataset fails naming the input; another org's blob is not found either", async () => {
    const missing = sha("no such dataset");
    let r = await t.client.preflight(train(TINY_GPT, { spec: { dataset: missing } }));
    let ds = byName(r, "dataset")!;
    expect(ds.status).toBe("fail");
    expect(ds.message).toContain("spec.dataset");
    expect(ds.message).toContain(`blob ${missing} not found`);
    expect(ds.details!.field).toBe("spec.dataset");
    r = await t.client.preflight(train(TINY_GPT, { spec: { dataset: "art_nope" } }));
    expect(byName(r, "dataset")!.message).toContain("artifact art_nope not found");

    const other = await createOrg(t, `other-${backend.name}`);
    const theirs = (await other.client.putBlob(new TextEncoder().encode('{"text": "private to the other org"}\n'))).digest;
    r = await t.client.preflight(train(TINY_GPT, { spec: { dataset: theirs } }));
    ds = byName(r, "dataset")!;
    expect(ds.status).toBe("fail");
    expect(ds.message).toContain(`blob ${theirs} not found`);
    // The same blob is fine for its owner (whose org has no workers: memory warns, nothing fails).
    const own = await other.client.preflight(train(TINY_GPT, { spec: { dataset: theirs, pack: { tokenizer: "cl100k_base", seq_len: 128 } } }));
    expect(own.checks.find((c) => c.name === "dataset")!.status).toBe("pass");
    expect(own.checks.find((c) => c.name === "cpu_memory")!.status).toBe("warn");
    const res = await http(url, "POST", "/v1/jobs", { key, body: train(TINY_GPT, { spec: { dataset: theirs } }) });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("preflight_failed");
  });

  test.skipIf(skip)("malformed JSONL fails naming the line and the field", async () => {
    const lines = ['{"text": "fine"}', "", '{"text": "also fine"}', '{"body": "no text field here"}', '{"text": "never read"}'];
    const bad = (await t.client.putBlob(new TextEncoder().encode(lines.join("\n")))).digest;
    let r = await t.client.preflight(train(TINY_GPT, { spec: { dataset: bad } }));
    let ds = byName(r, "dataset")!;
    expect(ds.status).toBe("fail");
    expect(ds.message).toMatch(/line 4: field "text" is missing/);
    expect(ds.details).toMatchObject({ line: 4, record_field: "text" });

    const broken = (await t.client.putBlob(new TextEncoder().encode('{"text": "ok"}\n{"text": "unterminated\n'))).digest;
    r = await t.client.preflight(train(TINY_GPT, { spec: { dataset: broken } }));
    ds = byName(r, "dataset")!;
    expect(ds.message).toMatch(/line 2: not valid JSON/);
    expect(ds.details!.line).toBe(2);

    const chat = (await t.client.putBlob(new TextEncoder().encode(JSON.stringify({ messages: [{ role: "user", content: "hi" }, { role: "bot", content: "hello" }] }) + "\n"))).digest;
    r = await t.client.preflight(train(TINY_GPT, { spec: { dataset: chat } }));
    expect(byName(r, "dataset")!.details).toMatchObject({ line: 1, record_field: "messages.1.role" });

    // Chat records with a tokenizer that has no chat template: the data stage would fail, so preflight does.
    const goodChat = (await t.client.putBlob(new TextEncoder().encode(JSON.stringify({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }] }) + "\n"))).digest;
    r = await t.client.preflight(train(TINY_GPT, { spec: { dataset: goodChat } }));
    expect(byName(r, "dataset")!.status).toBe("pass");
    expect(byName(r, "chat_template")!.status).toBe("fail");
    r = await t.client.preflight(train(TINY_GPT, { spec: { dataset: goodChat, pack: { tokenizer: tokenizerBlob, seq_len: 128, chat_template: "chatml" } } }));
    expect(byName(r, "chat_template")).toBeUndefined();
  });

  test.skipIf(skip)("tokenizer and model config problems name the field to fix", async () => {
    const notTok = (await t.client.putBlob(new TextEncoder().encode(JSON.stringify({ version: "1.0", normalizer: null })))).digest;
    let r = await t.client.preflight(train(TINY_GPT, { spec: { pack: { tokenizer: notTok, seq_len: 128 } } }));
    expect(byName(r, "tokenizer")).toMatchObject({ status: "fail" });
    expect(byName(r, "tokenizer")!.message).toMatch(/no "model" section/);
    r = await t.client.preflight(train(TINY_GPT, { spec: { pack: { tokenizer: "/opt/tokenizers/mine", seq_len: 128 } } }));
    expect(byName(r, "tokenizer")!.status).toBe("warn");

    r = await t.client.preflight(train({ n_layer: 2, n_embd: 64 }));
    expect(byName(r, "model_config")).toMatchObject({ status: "fail", details: { field: "spec.model.config.model_type" } });
    r = await t.client.preflight(train({ model_type: "mistral", hidden_size: 512, num_hidden_layers: 4, num_attention_heads: 8, vocab_size: 9000 }));
    expect(byName(r, "model_config")).toMatchObject({ status: "fail", details: { field: "spec.model.config.intermediate_size" } });
    r = await t.client.preflight(train({ ...TINY_GPT, n_head: 5 }));
    expect(byName(r, "model_config")!.details!.field).toBe("spec.model.config.n_head");
    r = await t.client.preflight(train({ ...TINY_GPT, n_positions: 64 }));
    expect(byName(r, "model_config")).toMatchObject({ status: "fail", details: { field: "spec.pack.seq_len" } });
    // With weights the config only overrides theirs: no sizes, no estimate, but nothing to fail either.
    r = await t.client.preflight(train({ attention_dropout: 0.1 }, { spec: { model: { config: { attention_dropout: 0.1 }, weights: "/models/base" } } }));
    expect(byName(r, "model_config")).toMatchObject({ status: "warn", details: { field: "spec.model.config.model_type" } });
    expect(r.estimate.memory).toBeNull();
    r = await t.client.preflight(train(TINY_GPT, { spec: { backend: "axolotl" } }));
    expect(byName(r, "spec")).toMatchObject({ status: "fail", details: { field: "spec.model.weights" } });
  });

  test.skipIf(skip)("a workflow's train step whose preflight fails fails with the preflight message instead of queueing", async () => {
    const step = (config: Record<string, unknown>) => ({ type: "train", requirements: { gpus: 1 }, with: { dataset, model: { config }, pack: { tokenizer: "cl100k_base", seq_len: 512 }, hyperparameters: { max_steps: 5 } } });
    const before = (await t.client.listJobs({ type: "train", limit: 1000 })).items.length;
    const run = await t.client.runWorkflow({ workflow: { name: `pf-${backend.name}`, steps: { big: step(LLAMA_70B) } } });
    const done = await t.client.waitForWorkflow(run.id, { timeoutMs: 20_000, pollMs: 50 });
    expect(done.status).toBe("failed");
    expect(done.steps.big!.job_id).toBeNull();
    expect(done.steps.big!.error).toMatch(/^preflight failed: gpu_memory: needs .*GiB per GPU; the largest GPU has 24 GiB/);
    expect((await t.client.listJobs({ type: "train", limit: 1000 })).items.length).toBe(before);
    // One that fits is queued, with its checks recorded on the job.
    const ok = await t.client.runWorkflow({ workflow: { name: `pf-ok-${backend.name}`, steps: { tiny: { ...step(TINY_GPT), with: { ...step(TINY_GPT).with, pack: { tokenizer: "cl100k_base", seq_len: 128 } } } } } });
    let jobId: string | null = null;
    for (let i = 0; i < 200 && jobId === null; i++) {
      jobId = (await t.client.getWorkflowRun(ok.id)).steps.tiny?.job_id ?? null;
      if (jobId === null) await new Promise((r) => setTimeout(r, 25));
    }
    expect(jobId).not.toBeNull();
    expect((await t.client.getManifest(jobId!)).preflight!.ok).toBe(true);
    await t.client.cancelWorkflowRun(ok.id);
  });

  test.skipIf(skip)("an invalid spec is a 422 naming the field, exactly as at submit", async () => {
    const body = { type: "train", spec: { dataset: "not-a-ref", model: {} } };
    const pre = await http(url, "POST", "/v1/preflight", { key, body });
    const sub = await http(url, "POST", "/v1/jobs", { key, body });
    expect(pre.status).toBe(422);
    expect(pre.json.error.code).toBe("invalid_request");
    expect(pre.json.error.details).toEqual(sub.json.error.details);
    expect(pre.json.error.details.map((d: { path: string }) => d.path)).toContain("spec.dataset");
  });

  test.skipIf(skip)("other job types: inputs exist and some online worker accepts the type and meets the requirements", async () => {
    let r = await t.client.preflight({ type: "command", spec: { argv: ["true"], inputs: { "a.jsonl": dataset } } });
    expect(r.status).toBe("pass");
    expect(r.checks.map((c) => [c.name, c.status])).toEqual([["spec", "pass"], ["inputs", "pass"], ["workers", "pass"]]);
    r = await t.client.preflight({ type: "command", spec: { argv: ["true"], inputs: { "a.jsonl": sha("missing") } }, requirements: { gpus: 4 } });
    expect(byName(r, "inputs")).toMatchObject({ status: "fail" });
    expect(byName(r, "inputs")!.message).toContain("spec.inputs.a.jsonl");
    expect(byName(r, "workers")!.status).toBe("fail");
    expect(byName(r, "workers")!.message).toMatch(/gpu-l4: needs 4 GPU\(s\), worker has 1/);
    // Non-train submissions never run preflight at submit: a missing input still queues (the worker reports it).
    const job = await t.client.submitJob({ type: "command", spec: { argv: ["true"], inputs: { x: sha("missing") } } });
    expect(job.preflight).toBeUndefined();
    // A read-only key may preflight.
    const ro = await t.client.createKey({ name: "ro", scopes: ["jobs:read"] });
    expect((await t.client.withKey(ro.key!).preflight({ type: "command", spec: { argv: ["true"] } })).ok).toBe(true);
  });
});
