import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ForgeClient } from "@nexa/sdk";
import { startServer, type RunningServer } from "@nexa/server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const CLI = join(import.meta.dirname, "../packages/cli/bin/nexa.js");
const built = existsSync(join(import.meta.dirname, "../packages/cli/dist/index.js"));

const TINY_GPT = { model_type: "gpt2", n_layer: 2, n_embd: 64, n_head: 4, vocab_size: 8192, n_positions: 128 };
const LLAMA_70B = { model_type: "llama", vocab_size: 128_256, hidden_size: 8192, intermediate_size: 28_672, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8 };

describe.skipIf(!built)("nexa preflight and nexa jobs submit (train)", () => {
  let server: RunningServer;
  let home: string;
  let env: Record<string, string>;
  let dataset: string;

  /** Runs the CLI without blocking the event loop (the server answers in this process). */
  function nexa(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: "1", ...env } });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      p.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }
  const file = (name: string, text: string) => {
    writeFileSync(join(home, name), text);
    return join(home, name);
  };
  const yamlJob = (config: Record<string, unknown>, gpus: number, extra = "") =>
    [
      "type: train",
      `requirements: {gpus: ${gpus}}`,
      "spec:",
      `  dataset: "${dataset}"`,
      `  model: {config: ${JSON.stringify(config)}, precision: bf16}`,
      "  pack: {tokenizer: cl100k_base, seq_len: 128}",
      "  hyperparameters: {max_steps: 20, micro_batch_size: 4}",
      extra,
    ].join("\n") + "\n";

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), "nexa-cli-preflight-"));
    server = await startServer({ home, port: 0, rateLimitRps: 0, writeCredentials: false });
    env = { NEXA_HOME: home, NEXA_URL: server.url, NEXA_API_KEY: server.adminKey! };
    const client = new ForgeClient({ url: server.url, apiKey: server.adminKey });
    dataset = (await client.putBlob(new TextEncoder().encode('{"text": "in the beginning"}\n{"text": "was the word"}\n'))).digest;
    await client.registerWorker({ name: "l4-box", capabilities: { cpus: 8, memory_gb: 32, gpus: [{ name: "NVIDIA L4", memory_gb: 24 }], labels: {} } });
  });
  afterAll(async () => {
    await server?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test("a model that fits: a table of passing checks and the estimates, exit 0; --json is the report", async () => {
    const job = file("tiny.yaml", yamlJob(TINY_GPT, 1));
    const r = await nexa(["preflight", job]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/pass\s+│?\s*gpu_memory/);
    expect(r.stdout).toMatch(/NVIDIA L4/);
    expect(r.stdout).toMatch(/memory\s+.*GiB per GPU × 1 = weights/);
    expect(r.stdout).toMatch(/tokens\s+10,240 at/);
    expect(r.stdout).toMatch(/cost\s+\$\d/);
    const j = await nexa(["preflight", job, "--json"]);
    const report = JSON.parse(j.stdout) as { ok: boolean; status: string; estimate: { tokens: number } };
    expect(report.ok).toBe(true);
    expect(report.estimate.tokens).toBe(20 * 4 * 128);
  });

  test("a 70B model on a 24 GB GPU: the failing check is shown and the exit is 1; --type/--spec (a spec file) works too", async () => {
    const r = await nexa(["preflight", file("big.yaml", yamlJob(LLAMA_70B, 1))]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/fail\s+│?\s*gpu_memory\s+│?\s*needs [\d.]+ GiB per GPU; the largest GPU has 24 GiB/);
    expect(r.stdout).toMatch(/would be rejected/);
    const spec = file("spec.json", JSON.stringify({ dataset, model: { config: LLAMA_70B }, pack: { tokenizer: "cl100k_base", seq_len: 128 } }));
    const s = await nexa(["preflight", "--type", "train", "--spec", spec, "--gpus", "1", "--json"]);
    expect(s.code).toBe(1);
    expect((JSON.parse(s.stdout) as { status: string }).status).toBe("fail");
  });

  test("jobs submit: a failing train job is refused with its checks; --no-preflight queues it; warnings are printed", async () => {
    const big = file("big2.yaml", yamlJob(LLAMA_70B, 1));
    const refused = await nexa(["jobs", "submit", "-f", big]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/preflight fail gpu_memory: needs/);
    expect(refused.stderr).toMatch(/preflight_failed/);
    const queued = await nexa(["jobs", "submit", "-f", big, "--no-preflight"]);
    expect(queued.code, queued.stderr).toBe(0);
    expect(queued.stdout).toMatch(/^job_/);
    // A guardrail the estimate exceeds: submitted, with the warning on stderr.
    const warned = await nexa(["jobs", "submit", "-f", file("warn.yaml", yamlJob(TINY_GPT, 1, "limits: {max_tokens: 100}"))]);
    expect(warned.code, warned.stderr).toBe(0);
    expect(warned.stderr).toMatch(/preflight warn tokens: 10,240 tokens to train on; over limits.max_tokens 100/);
  });

  test("bad input: no file and no --type is a clear error", async () => {
    const r = await nexa(["preflight"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/give a job submission file/);
  });
});
