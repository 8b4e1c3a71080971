// examples/fanout end to end: `nexa run` (the CLI code, in process) against a real control plane
// and a real WorkerAgent; the merged totals are checked against counts taken here from the corpus.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ForgeClient } from "@nexa/sdk";
import { startServer, type RunningServer } from "@nexa/server";
import { WorkerAgent } from "@nexa/worker";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Command } from "commander";
import { registerWorkflowCommands } from "../../packages/cli/src/commands/workflows.js";
import { runWorkflowCli, type CliResult } from "../../packages/cli/test/support/in-process.js";

const FILE = join(import.meta.dirname, "workflow.yaml");
let home: string;
let server: RunningServer;
let client: ForgeClient;
let agent: WorkerAgent;

/** Runs `nexa <args>` in process against this file's server. */
function nexa(...args: string[]): Promise<CliResult> {
  return runWorkflowCli(server, args);
}

/** Word counts of the corpus, computed here (not by the example's scripts). */
function expected() {
  const docs = readFileSync(join(import.meta.dirname, "corpus.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { text: string });
  const counts = new Map<string, number>();
  for (const d of docs) for (const w of d.text.toLowerCase().match(/[a-z0-9]+/g) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  return { documents: docs.length, words: [...counts.values()].reduce((a, b) => a + b, 0), distinct: counts.size };
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "nexa-ex-fanout-"));
  server = await startServer({ home, port: 0, rateLimitRps: 0 });
  client = new ForgeClient({ url: server.url, apiKey: server.adminKey! });
  agent = new WorkerAgent({ url: server.url, apiKey: server.adminKey!, name: "fanout-worker", concurrency: 4, gpus: 0, workdir: join(home, "work"), graceMs: 1000 });
  await agent.start();
});
afterAll(async () => {
  await agent?.stop();
  await server?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("examples/fanout", () => {
  test("split → count × 4 → merge; totals match the corpus; graph shows the fan-out", async () => {
    const r = await nexa("run", FILE, "--input", `node=${process.execPath}`, "--watch");
    expect(r.err).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const id = r.out.trim().split("\n")[0]!;
    expect(id).toMatch(/^wfr_/);
    // Plain (non-TTY) progress: one line per change, ending with the run's status.
    expect(r.err).toMatch(/count .*4\/4 ✓/);
    expect(r.err).toMatch(/run wfr_\S+ succeeded/);

    const run = await client.getWorkflowRun(id);
    expect(run.status).toBe("succeeded");
    const count = run.steps.count!;
    expect(count.matrix).toHaveLength(4);
    expect(new Set(count.matrix!.map((m) => m.job_id)).size).toBe(4);
    const totals = JSON.parse(await (await client.getBlob(run.outputs.totals as string)).text()) as { shards: number; documents: number; words: number; distinct: number };
    expect(totals).toMatchObject({ shards: 4, ...expected() });
    expect(run.outputs.per_shard).toHaveLength(4);

    const g = await nexa("workflows", "graph", id, "--lines");
    expect(g.code).toBe(0);
    expect(g.out).toMatch(/✓ count\s+succeeded .*4\/4 ✓\s+← split/);
    expect(g.out).toMatch(/2 ✓ merge .*← count/);
    const got = await nexa("workflows", "get", id, "--json");
    expect(JSON.parse(got.out)).toMatchObject({ id, status: "succeeded" });
  });

  test("a different shard count re-runs the fan-out at the new width and merges to the same totals", async () => {
    const r = await nexa("run", FILE, "--input", `node=${process.execPath}`, "--input", "shards=3", "--watch", "--json");
    expect(r.code).toBe(0);
    const run = JSON.parse(r.out) as { steps: Record<string, { cache_hit: boolean; matrix?: unknown[] }>; outputs: { totals: string } };
    expect(run.steps.split!.cache_hit).toBe(false);
    expect(run.steps.count!.matrix).toHaveLength(3);
    const totals = JSON.parse(await (await client.getBlob(run.outputs.totals)).text()) as Record<string, unknown>;
    expect(totals).toMatchObject({ shards: 3, ...expected() });
  });

  test("the static graph of the file needs no server", async () => {
    const program = new Command("nexa").exitOverride();
    registerWorkflowCommands(program);
    let out = "";
    const { write } = process.stdout;
    process.stdout.write = ((c: string | Uint8Array) => ((out += String(c)), true)) as typeof process.stdout.write;
    try {
      await program.parseAsync(["node", "nexa", "workflows", "graph", FILE, "--url", "http://127.0.0.1:9"]);
    } finally {
      process.stdout.write = write;
    }
    expect(out).toContain("fanout");
    expect(out).toMatch(/◇ count[\s\S]*matrix ×\? over shard[\s\S]*← split/);
  });
});
