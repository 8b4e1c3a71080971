// examples/cache end to end: `nexa run` (the CLI code, in process) against a real control plane
// and a real WorkerAgent — cache hits on a rerun, `cache: {version}` invalidating one step,
// `cache: false`, `--no-cache`, a changed input, and a 422 printed with file, line and column.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WorkflowRun } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { startServer, type RunningServer } from "@nexa/server";
import { WorkerAgent } from "@nexa/worker";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runWorkflowCli, type CliResult } from "../../packages/cli/test/support/in-process.js";

let home: string;
let dir: string;
let server: RunningServer;
let client: ForgeClient;
let agent: WorkerAgent;

/** Runs `nexa <args>` in process against this file's server. */
function nexa(...args: string[]): Promise<CliResult> {
  return runWorkflowCli(server, args);
}

/** `nexa run FILE --watch --json` → the finished run (exit code checked). */
async function run(file: string, ...extra: string[]): Promise<WorkflowRun> {
  const r = await nexa("run", file, "--input", `node=${process.execPath}`, "--input", "work_ms=200", ...extra, "--watch", "--json");
  if (r.code !== 0) throw new Error(`nexa run exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out) as WorkflowRun;
}

const hits = (r: WorkflowRun) => Object.fromEntries(Object.entries(r.steps).map(([n, s]) => [n, s.cache_hit]));

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "nexa-ex-cache-"));
  // A copy of the example, so the test can edit the file as a user would.
  dir = join(home, "example");
  cpSync(import.meta.dirname, dir, { recursive: true, filter: (p) => !p.endsWith(".test.ts") });
  server = await startServer({ home: join(home, "forge"), port: 0, rateLimitRps: 0 });
  client = new ForgeClient({ url: server.url, apiKey: server.adminKey! });
  agent = new WorkerAgent({ url: server.url, apiKey: server.adminKey!, name: "cache-worker", concurrency: 2, gpus: 0, workdir: join(home, "work"), graceMs: 1000 });
  await agent.start();
});
afterAll(async () => {
  await agent?.stop();
  await server?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("examples/cache", () => {
  let first: WorkflowRun;

  test("a second run is all cache hits (except cache: false), reusing the first run's jobs and outputs", async () => {
    const file = join(dir, "workflow.yaml");
    first = await run(file);
    expect(first.status).toBe("succeeded");
    expect(hits(first)).toEqual({ tokenize: false, summarize: false, report: false, stamp: false });
    const report = await (await client.getBlob(first.outputs.report as string)).text();
    expect(report).toContain("11 tokens, 9 distinct");
    expect(report).toContain("- the: 3");

    const second = await run(file);
    expect(hits(second)).toEqual({ tokenize: true, summarize: true, report: true, stamp: false });
    for (const s of ["tokenize", "summarize", "report"]) expect(second.steps[s]!.job_id).toBe(first.steps[s]!.job_id);
    expect(second.steps.stamp!.job_id).not.toBe(first.steps.stamp!.job_id);
    expect(second.outputs).toEqual(first.outputs);

    const g = await nexa("workflows", "graph", second.id, "--lines");
    expect(g.out).toMatch(/✓ summarize\s+succeeded ⚡cache hit/);
    const listed = JSON.parse((await nexa("workflows", "list", "--json")).out) as { items: WorkflowRun[] };
    expect(listed.items.map((r) => r.id).slice(0, 2)).toEqual([second.id, first.id]);
  });

  test("bumping cache.version re-runs that step only; its identical output keeps report a hit", async () => {
    const file = join(dir, "workflow-v2.yaml");
    const text = readFileSync(join(dir, "workflow.yaml"), "utf8");
    expect(text).toContain("cache: { version: 1 }");
    writeFileSync(file, text.replace("cache: { version: 1 }", "cache: { version: 2 }"));
    const bumped = await run(file);
    expect(hits(bumped)).toEqual({ tokenize: true, summarize: false, report: true, stamp: false });
    expect(bumped.steps.summarize!.job_id).not.toBe(first.steps.summarize!.job_id);
    expect(bumped.outputs).toEqual(first.outputs);
  });

  test("a changed input re-runs every step it reaches; --no-cache runs everything", async () => {
    const file = join(dir, "workflow.yaml");
    const changed = await run(file, "--input", "text=other words entirely");
    expect(hits(changed)).toEqual({ tokenize: false, summarize: false, report: false, stamp: false });
    expect(await (await client.getBlob(changed.outputs.report as string)).text()).toContain("3 tokens, 3 distinct");
    const noCache = await run(file, "--no-cache");
    expect(noCache.no_cache).toBe(true);
    expect(Object.values(hits(noCache)).every((h) => !h)).toBe(true);
    expect(noCache.outputs).toEqual(first.outputs);
  });

  test("an invalid file is a 422 printed as FILE:LINE:COL path: message, exit 1", async () => {
    const file = join(dir, "broken.yaml");
    writeFileSync(file, readFileSync(join(dir, "workflow.yaml"), "utf8").replace("needs: [report]", "needs: [reprot]"));
    const r = await nexa("run", file);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    const line = readFileSync(file, "utf8").split("\n").findIndex((l) => l.includes("needs: [reprot]")) + 1;
    expect(r.err).toContain(`${file}:${line}:12 steps.stamp.needs: unknown step "reprot"`);
  });
});
