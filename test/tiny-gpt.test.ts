// examples/tiny-gpt end to end, through `nexa demo`'s own code (runDemo): a real control plane
// (SQLite, and PostgreSQL with fewer steps) and a real worker run audit → train (pack + the torch recipe on the CPU) → deploy
// (recipes/torch/serve.py) → evaluate through the gateway. Checked against the control plane itself
// while the instance is kept up: every step succeeded, the train job's loss series fell, the
// deployment is healthy and answers through the gateway, which recorded the evaluation's
// requests; the evaluation has scores; then stopping the demo stops the model server.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ForgeClient } from "@nexa/sdk";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runDemo, type DemoResult } from "../packages/cli/src/commands/demo.js";
import { missingModules, RECIPE_MODULES } from "../packages/cli/src/commands/python-env.js";
import { freshPgDatabase, postgresAvailable } from "../packages/server/test/helpers.js";

const ROOT = join(import.meta.dirname, "..");
const CLI = join(ROOT, "packages/cli/bin/nexa.js");
// Fewer steps than the example's 300: enough for the loss to fall, small for the CI budget.
const BACKENDS = [
  { backend: "sqlite", steps: 30 },
  { backend: "postgres", steps: 10 },
] as const;

/** NEXA_PYTHON (CI: the .venv of .ci/run), else the repository's .venv or python3 when it has the recipe's modules. */
async function recipePython(): Promise<string | undefined> {
  const fromEnv = process.env.NEXA_PYTHON;
  if (fromEnv) return fromEnv;
  if (process.env.CI === "true") throw new Error("CI must set NEXA_PYTHON to the test venv's python (see .ci/run)");
  for (const p of [join(ROOT, ".venv/bin/python"), "python3"]) if ((await missingModules(p, RECIPE_MODULES))?.length === 0) return p;
  return undefined;
}

const python = await recipePython();
if (!python) console.warn("tiny-gpt.test.ts skipped: no Python with torch, transformers, numpy and safetensors (set NEXA_PYTHON, e.g. a venv with recipes/torch/requirements.txt)");

const pgOk = python !== undefined && (await postgresAvailable());

describe.skipIf(!python).each(BACKENDS.filter((b) => b.backend === "sqlite" || pgOk))("examples/tiny-gpt via nexa demo on $backend", ({ backend, steps: STEPS }) => {
  let demo: DemoResult;
  let dropDb: (() => Promise<void>) | undefined;
  const lines: string[] = [];
  const saved = process.env.NEXA_PYTHON;

  beforeAll(async () => {
    process.env.NEXA_PYTHON = python;
    let databaseUrl: string | undefined;
    if (backend === "postgres") ({ url: databaseUrl, drop: dropDb } = await freshPgDatabase());
    demo = await runDemo({ steps: STEPS, keep: true, say: (l) => lines.push(l), ...(databaseUrl ? { databaseUrl } : {}) });
  }, 900_000);
  afterAll(async () => {
    await demo?.stop();
    await dropDb?.();
    if (saved === undefined) delete process.env.NEXA_PYTHON;
    else process.env.NEXA_PYTHON = saved;
  });

  test("every step succeeds; the train job's loss falls; the model is served; the evaluation scores it", async () => {
    expect(demo.ok, lines.join("\n")).toBe(true);
    const run = demo.run;
    expect(Object.keys(run.steps)).toEqual(["audit", "train", "deploy", "evaluate"]);
    for (const [name, s] of Object.entries(run.steps)) expect(s.status, `${name}: ${s.error ?? ""}`).toBe("succeeded");

    const client = new ForgeClient({ url: demo.url, apiKey: demo.apiKey });
    const audit = (await (await client.getBlob(run.outputs.audit_report as string)).json()) as { docs_in: number; kept: number };
    expect(audit.docs_in).toBe(58);
    expect(audit.kept).toBeGreaterThan(40);
    expect(audit.kept).toBeLessThan(58);

    // The metric series the trainer streamed, as the control plane stored them.
    const series = (await client.getMetrics(run.steps.train!.job_id!)).series;
    const loss = series.loss!;
    expect(loss.map((p) => p.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(loss[loss.length - 1]!.value).toBeLessThan(loss[0]!.value - 0.5);
    const summary = JSON.parse(await (await client.getBlob(run.outputs.train_summary as string)).text()) as { status: string; step: number; first_loss: number; final_loss: number };
    expect(summary).toMatchObject({ status: "completed", step: STEPS });
    expect(summary.final_loss).toBeLessThan(summary.first_loss);

    // The deployment serves, behind the gateway, while the instance is kept.
    const deployment = JSON.parse(await (await client.getBlob(run.outputs.deployment as string)).text()) as { deployment_id: string; url: string; model: string; backend: string };
    expect(deployment).toMatchObject({ model: "tiny-gpt", backend: "torch" });
    const listed = await client.listDeployments({ name: "tiny-gpt" });
    expect(listed.map((d) => [d.id, d.status, d.url])).toEqual([[deployment.deployment_id, "healthy", deployment.url]]);
    const res = await fetch(`${demo.url}/v1/gateway/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${demo.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-gpt", messages: [{ role: "user", content: "3 And I hated Esau, and laid his" }], max_tokens: 12, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    const reply = (await res.json()) as { choices: { message: { content: string } }[]; usage: { completion_tokens: number } };
    expect(reply.usage.completion_tokens).toBeGreaterThan(0);
    expect(demo.tinyGpt?.sample?.reply.trim()).not.toBe("");

    const report = JSON.parse(await (await client.getBlob(run.outputs.eval_report as string)).text()) as {
      metrics: Record<string, number>;
      counts: { samples: number; errors: number };
      assertions: { pass_rate: number };
      usage: { completion_tokens: number };
      endpoint: { deployment?: string; base_url?: string };
    };
    expect(report.endpoint).toMatchObject({ deployment: "tiny-gpt" });
    expect(report.endpoint.base_url).toBeUndefined();
    expect(report.counts).toMatchObject({ samples: 24, errors: 0 });
    for (const m of ["chrf", "bleu", "rougeL"]) expect(Number.isFinite(report.metrics[m]), m).toBe(true);
    expect(report.metrics.chrf).toBeGreaterThan(0);
    expect(report.assertions.pass_rate).toBeGreaterThan(0.5);
    expect(report.usage.completion_tokens).toBeGreaterThan(0);
    // The gateway recorded the evaluation's 24 requests, the demo's and this test's (records are flushed in batches).
    let served = 0;
    for (let i = 0; i < 50 && served < 26; i++) {
      served = (await client.gatewayRequests({ route: "tiny-gpt" })).summary?.reduce((n, v) => n + v.requests - v.errors, 0) ?? 0;
      if (served < 26) await new Promise((r) => setTimeout(r, 200));
    }
    expect(served).toBe(26);

    // The same inputs again: audit and train come from the cache, the model is served and evaluated anew.
    const again = await client.waitForWorkflow((await client.runWorkflow({ workflow: await readFile(join(ROOT, "examples/tiny-gpt/workflow.yaml"), "utf8"), inputs: run.inputs })).id, { timeoutMs: 300_000 });
    expect(again.status, again.error ?? "").toBe("succeeded");
    expect(Object.fromEntries(Object.entries(again.steps).map(([k, s]) => [k, s.cache_hit]))).toEqual({ audit: true, train: true, deploy: false, evaluate: false });
    expect(again.outputs.model).toEqual(run.outputs.model);
    expect((await client.listDeployments({ name: "tiny-gpt", status: "healthy" })).length).toBe(2);

    // What the user saw: the Python, stages with elapsed times, loss as it fell, the eval score.
    const text = lines.join("\n");
    expect(text).toMatch(/python: \S+/);
    expect(text).toMatch(/\[\s*\d+\.\ds\] train\s+running/);
    expect(text).toMatch(new RegExp(`train step\\s+\\d+/${STEPS}\\s+loss \\d+\\.\\d+`));
    expect(text).toMatch(/eval on 24 held-out verses: chrf \d/);

    // Stopping the instance stops the model server with it.
    await demo.stop();
    await expect(fetch(`${deployment.url}/health`)).rejects.toThrow();
  }, 120_000);
});

describe.skipIf(!existsSync(join(ROOT, "packages/cli/dist/index.js")))("nexa demo without a usable Python", () => {
  test("a NEXA_PYTHON that does not run is a clear error naming it, exit 1", () => {
    const r = spawnSync(process.execPath, [CLI, "demo"], { env: { ...process.env, NO_COLOR: "1", NEXA_PYTHON: "/nonexistent/python3" }, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/NEXA_PYTHON=\/nonexistent\/python3 does not run: point NEXA_PYTHON at a Python 3\.10\+ with torch, transformers, numpy, safetensors/);
  });
});
