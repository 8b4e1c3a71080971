// `nexa run --watch` exit codes, `nexa workflows resume --watch`, `cancel` and `graph` of a failed
// run, against a real control plane and a real WorkerAgent (the CLI code in process).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WorkflowRun } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { startServer, type RunningServer } from "@nexa/server";
import { WorkerAgent } from "@nexa/worker";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runWorkflowCli, type CliResult } from "./support/in-process.js";

let home: string;
let server: RunningServer;
let client: ForgeClient;
let agent: WorkerAgent;

/** Runs `nexa <args>` in process against this file's server. */
function nexa(...args: string[]): Promise<CliResult> {
  return runWorkflowCli(server, args);
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "nexa-cli-wfe2e-"));
  server = await startServer({ home: join(home, "forge"), port: 0, rateLimitRps: 0 });
  client = new ForgeClient({ url: server.url, apiKey: server.adminKey! });
  agent = new WorkerAgent({ url: server.url, apiKey: server.adminKey!, name: "cli-wf", concurrency: 2, gpus: 0, workdir: join(home, "work"), graceMs: 500 });
  await agent.start();
});
afterAll(async () => {
  await agent?.stop();
  await server?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("nexa run / workflows against a server", () => {
  test("a failing step exits 1 with a resume hint; resume --watch runs only the rest and exits 0", async () => {
    const marker = join(home, "fail-now");
    writeFileSync(marker, "x");
    const file = join(home, "flaky.yaml");
    // `flaky` fails while the marker file exists.
    writeFileSync(
      file,
      `name: flaky
steps:
  first: {type: command, with: {argv: [sh, -c, 'echo one > "$NEXA_OUTPUTS_DIR/one.txt"']}}
  flaky:
    type: command
    with:
      argv: [sh, -c, 'test ! -e "${marker}" && cat "$NEXA_INPUTS_DIR/one.txt" > "$NEXA_OUTPUTS_DIR/two.txt"']
      inputs: {one.txt: "\${{ steps.first.outputs['one.txt'] }}"}
  last: {type: command, needs: [flaky], with: {argv: ["true"]}}
`,
    );
    const failed = await nexa("run", file, "--watch", "--no-cache");
    expect(failed.code).toBe(1);
    const id = failed.out.trim();
    expect(id).toMatch(/^wfr_/);
    expect(failed.err).toMatch(/flaky failed/);
    expect(failed.err).toContain(`nexa workflows resume ${id} --watch`);

    const g = await nexa("workflows", "graph", id, "--lines");
    expect(g.out).toMatch(/✓ first/);
    expect(g.out).toMatch(/✗ flaky\s+failed/);
    expect(g.out).toMatch(/↷ last\s+skipped/);

    rmSync(marker);
    const resumed = await nexa("workflows", "resume", id, "--watch", "--json");
    expect(resumed.code).toBe(0);
    const run = JSON.parse(resumed.out) as WorkflowRun;
    expect(run).toMatchObject({ status: "succeeded", resume_from: id });
    expect(run.steps.first!.reused).toBe(true);
    expect(run.steps.flaky!.reused).toBeUndefined();
    expect(await (await client.getBlob((run.steps.flaky!.outputs["two.txt"] as { digest: string }).digest)).text()).toBe("one\n");
  });

  test("cancel stops a running run; a second cancel is a conflict", async () => {
    const file = join(home, "long.yaml");
    writeFileSync(file, "name: long\nsteps:\n  wait: {type: command, with: {argv: [sleep, '30']}}\n  after: {type: command, needs: [wait], with: {argv: ['true']}}\n");
    const started = await nexa("run", file, "--no-cache");
    const id = started.out.trim();
    for (let i = 0; i < 100 && (await client.getWorkflowRun(id)).steps.wait!.status !== "running"; i++) await new Promise((r) => setTimeout(r, 100));
    const c = await nexa("workflows", "cancel", id);
    expect(c.code).toBe(0);
    expect(c.out).toContain(`${id} canceled`);
    const done = await client.waitForWorkflow(id, { timeoutMs: 20_000 });
    expect(done.status).toBe("canceled");
    expect(done.steps.after!.job_id).toBeNull();
    const again = await nexa("workflows", "cancel", id);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already canceled/);
  });

  test("unknown inputs and unreadable @files fail before anything runs, naming the fix", async () => {
    const file = join(home, "in.yaml");
    writeFileSync(file, "name: in\ninputs: {data: {type: digest}}\nsteps:\n  a: {type: command, with: {argv: [cat], inputs: {d: '${{ inputs.data }}'}}}\n");
    const missing = await nexa("run", file, "--input", "data=@nope.jsonl");
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/input data: cannot read .*nope\.jsonl: ENOENT/);
    const unknown = await nexa("run", file, "--input", "data=@" + file, "--input", "extra=1");
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain(`${file} inputs.extra: unknown input (the workflow declares: data)`);
    expect(existsSync(file)).toBe(true);
    expect((await client.listWorkflowRuns({ name: "in" })).items).toHaveLength(0);
  });
});
