import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ForgeClient } from "@nexa/sdk";
import { startServer, type RunningServer } from "@nexa/server";
import { WorkerAgent } from "@nexa/worker";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const NODE = process.execPath;
/** A step that writes `out.txt` = its argument after sleeping `ms`, and fails while `failFile` exists. */
const SCRIPT = `
const fs = require("fs"), path = require("path");
const [ms, text, failFile] = process.argv.slice(1);
if (failFile && fs.existsSync(failFile)) { console.error("failing: " + failFile + " exists"); process.exit(3); }
setTimeout(() => {
  let extra = "";
  for (const f of fs.existsSync(process.env.NEXA_INPUTS_DIR) ? fs.readdirSync(process.env.NEXA_INPUTS_DIR) : []) extra += "|" + fs.readFileSync(path.join(process.env.NEXA_INPUTS_DIR, f), "utf8");
  fs.writeFileSync(path.join(process.env.NEXA_OUTPUTS_DIR, "out.txt"), text + extra);
  console.log("done " + text);
}, Number(ms));
`;
const step = (ms: number, text: string, extra: Record<string, unknown> = {}, failFile = "") => ({
  type: "command",
  with: { argv: [NODE, "-e", SCRIPT, String(ms), text, failFile], ...extra },
});

let home: string;
let server: RunningServer;
let client: ForgeClient;
const agents: WorkerAgent[] = [];

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "nexa-wf-"));
  server = await startServer({ home, port: 0, rateLimitRps: 0 });
  client = new ForgeClient({ url: server.url, apiKey: server.adminKey! });
  for (const name of ["w1", "w2"]) {
    const a = new WorkerAgent({ url: server.url, apiKey: server.adminKey!, name, concurrency: 1, gpus: 0, workdir: join(home, name), graceMs: 1000 });
    await a.start();
    agents.push(a);
  }
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await server?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("workflows", () => {
  test("independent branches run at once on two workers; fan-in sees both; a rerun is all cache hits", async () => {
    const wf = {
      name: "branches",
      steps: {
        a: step(700, "A"),
        b: step(700, "B"),
        join: { ...step(0, "J", { inputs: { "a.txt": "${{ steps.a.outputs['out.txt'] }}", "b.txt": "${{ steps.b.outputs['out.txt'] }}" } }), needs: ["a", "b"] },
      },
      outputs: { result: "${{ steps.join.outputs['out.txt'] }}" },
    };
    const run = await client.runWorkflow({ workflow: wf });
    const done = await client.waitForWorkflow(run.id, { timeoutMs: 60_000 });
    expect(done.status).toBe("succeeded");
    const [ja, jb] = await Promise.all([client.getJob(done.steps.a!.job_id!), client.getJob(done.steps.b!.job_id!)]);
    expect(ja.worker_id).not.toBe(jb.worker_id);
    // Overlap: each started before the other finished.
    expect(Date.parse(ja.started_at!)).toBeLessThan(Date.parse(jb.finished_at!));
    expect(Date.parse(jb.started_at!)).toBeLessThan(Date.parse(ja.finished_at!));
    const joinOut = await (await client.getBlob(done.outputs.result as string)).text();
    expect(joinOut).toBe("J|A|B");

    const again = await client.waitForWorkflow((await client.runWorkflow({ workflow: wf })).id, { timeoutMs: 30_000 });
    expect(again.status).toBe("succeeded");
    for (const name of ["a", "b", "join"]) {
      expect(again.steps[name]!.cache_hit).toBe(true);
      expect(again.steps[name]!.job_id).toBe(done.steps[name]!.job_id);
    }
    expect(again.outputs).toEqual(done.outputs);
    const noCache = await client.waitForWorkflow((await client.runWorkflow({ workflow: wf, no_cache: true })).id, { timeoutMs: 60_000 });
    expect(noCache.steps.a!.cache_hit).toBe(false);
    expect(noCache.outputs).toEqual(done.outputs);
  });

  test("a changed input re-runs only the steps it reaches", async () => {
    const wf = {
      name: "reach",
      inputs: { word: { type: "string", default: "one" } },
      steps: {
        fixed: step(0, "F"),
        uses: step(0, "U-${{ inputs.word }}"),
        after: { ...step(0, "X", { inputs: { "u.txt": "${{ steps.uses.outputs['out.txt'] }}", "f.txt": "${{ steps.fixed.outputs['out.txt'] }}" } }) },
      },
    };
    const r1 = await client.waitForWorkflow((await client.runWorkflow({ workflow: wf })).id, { timeoutMs: 30_000 });
    const r2 = await client.waitForWorkflow((await client.runWorkflow({ workflow: wf, inputs: { word: "two" } })).id, { timeoutMs: 30_000 });
    expect(r1.status).toBe("succeeded");
    expect(r2.status).toBe("succeeded");
    expect(r2.steps.fixed!.cache_hit).toBe(true);
    expect(r2.steps.uses!.cache_hit).toBe(false);
    expect(r2.steps.after!.cache_hit).toBe(false);
  });

  test("resume after a failed step runs only the rest, and its outputs equal a clean run's", async () => {
    const marker = join(home, "fail-now");
    writeFileSync(marker, "x");
    const wf = {
      name: "resumable",
      steps: {
        first: step(0, "1"),
        flaky: { ...step(0, "2", { inputs: { "p.txt": "${{ steps.first.outputs['out.txt'] }}" } }, marker) },
        last: { ...step(0, "3", { inputs: { "p.txt": "${{ steps.flaky.outputs['out.txt'] }}" } }) },
      },
      outputs: { final: "${{ steps.last.outputs['out.txt'] }}" },
    };
    const failed = await client.waitForWorkflow((await client.runWorkflow({ workflow: wf, no_cache: true })).id, { timeoutMs: 30_000 });
    expect(failed.status).toBe("failed");
    expect(failed.steps.first!.status).toBe("succeeded");
    expect(failed.steps.flaky!.status).toBe("failed");
    expect(failed.steps.last!.status).toBe("canceled");
    expect(failed.steps.last!.skipped).toBe(true);
    rmSync(marker);
    const resumed = await client.waitForWorkflow((await client.resumeWorkflowRun(failed.id, { no_cache: true })).id, { timeoutMs: 30_000 });
    expect(resumed.status).toBe("succeeded");
    expect(resumed.resume_from).toBe(failed.id);
    expect(resumed.steps.first!.reused).toBe(true);
    expect(resumed.steps.first!.job_id).toBe(failed.steps.first!.job_id);
    expect(resumed.steps.flaky!.reused).toBeUndefined();
    const clean = await client.waitForWorkflow((await client.runWorkflow({ workflow: wf, no_cache: true })).id, { timeoutMs: 30_000 });
    expect(clean.status).toBe("succeeded");
    expect(resumed.outputs).toEqual(clean.outputs);
  });

  test("matrix fans out; a step that needs it gets the list of its outputs", async () => {
    const wf = {
      name: "fan",
      steps: {
        shard: { ...step(0, "s${{ matrix.i }}"), matrix: { i: [0, 1, 2, 3] } },
        merge: { type: "command", with: { argv: [NODE, "-e", "require('fs').writeFileSync(process.env.NEXA_OUTPUTS_DIR + '/n.txt', String(JSON.parse(process.argv[1].slice(5)).length))", "list=${{ steps.shard.outputs['out.txt'] }}"] } },
      },
    };
    const done = await client.waitForWorkflow((await client.runWorkflow({ workflow: wf })).id, { timeoutMs: 60_000 });
    expect(done.status).toBe("succeeded");
    expect(done.steps.shard!.matrix).toHaveLength(4);
    const outs = done.steps.shard!.outputs["out.txt"] as { digest: string }[];
    expect(outs).toHaveLength(4);
    const texts = await Promise.all(outs.map(async (o) => (await client.getBlob(o.digest)).text()));
    expect(texts).toEqual(["s0", "s1", "s2", "s3"]);
    expect(await (await client.getBlob((done.steps.merge!.outputs["n.txt"] as { digest: string }).digest)).text()).toBe("4");
  });

  test("cancel mid-run stops the running job and starts nothing else", async () => {
    const wf = { name: "cancel-me", steps: { long: step(60_000, "L"), next: { ...step(0, "N"), needs: ["long"] } } };
    const run = await client.runWorkflow({ workflow: wf, no_cache: true });
    for (let i = 0; i < 100; i++) {
      const r = await client.getWorkflowRun(run.id);
      if (r.steps.long!.status === "running") break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await client.cancelWorkflowRun(run.id);
    const done = await client.waitForWorkflow(run.id, { timeoutMs: 30_000 });
    expect(done.status).toBe("canceled");
    expect(done.steps.long!.status).toBe("canceled");
    expect(done.steps.next!.job_id).toBeNull();
    const running = await client.listJobs({ status: "running" });
    expect(running.items).toHaveLength(0);
  });

  test("invalid files answer 422 with the path and line of each problem", async () => {
    const yaml = "name: bad\nsteps:\n  a:\n    type: command\n    needs: [b]\n    with: {argv: [x]}\n  b:\n    type: command\n    needs: [a]\n    with: {argv: [y]}\n";
    const err = await client.runWorkflow({ workflow: yaml }).catch((e: unknown) => e as { code: string; message: string; details: { line?: number; message: string }[] });
    expect(err).toMatchObject({ code: "invalid_request" });
    expect((err as { details: { message: string }[] }).details[0]!.message).toMatch(/cycle/);
    const missing = await client.runWorkflow({ workflow: { name: "m", inputs: { x: { type: "number" } }, steps: { a: step(0, "${{ inputs.x }}") } } }).catch((e: unknown) => e as Error);
    expect((missing as Error).message).toMatch(/missing input x/);
  });
});

describe("workflows survive a server SIGKILL", () => {
  let child: ChildProcess | undefined;
  const cli = join(import.meta.dirname, "../packages/cli/bin/nexa.js");
  const startChild = (h: string, port: number) =>
    new Promise<ChildProcess>((resolve, reject) => {
      const p = spawn(NODE, [cli, "server", "--home", h, "--port", String(port), "--rate-limit", "0"], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      p.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("listening on")) resolve(p);
      });
      p.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      p.on("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
    });

  test.skipIf(!existsSync(join(import.meta.dirname, "../packages/cli/dist/index.js")))("a run in flight completes after the server is killed and restarted", async () => {
    const h = mkdtempSync(join(tmpdir(), "nexa-wfkill-"));
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    child = await startChild(h, port);
    const url = `http://127.0.0.1:${port}`;
    const key = JSON.parse((await import("node:fs")).readFileSync(join(h, "credentials"), "utf8")).api_key as string;
    const c = new ForgeClient({ url, apiKey: key });
    const agent = new WorkerAgent({ url, apiKey: key, name: "survivor", gpus: 0, workdir: join(h, "w"), graceMs: 1000 });
    await agent.start();
    try {
      const wf = { name: "kill", steps: { a: step(0, "A"), b: { ...step(6000, "B"), needs: ["a"] }, c: { ...step(0, "C"), needs: ["b"] } } };
      const run = await c.runWorkflow({ workflow: wf });
      for (let i = 0; i < 100; i++) {
        const r = await c.getWorkflowRun(run.id);
        if (r.steps.b!.status === "running") break;
        await new Promise((res) => setTimeout(res, 100));
      }
      child.kill("SIGKILL");
      await new Promise((res) => child!.once("exit", res));
      child = await startChild(h, port);
      const done = await c.waitForWorkflow(run.id, { timeoutMs: 60_000 });
      if (done.status !== "succeeded") console.error(JSON.stringify(done, null, 1), await c.getLogs(done.steps.b!.job_id!));
      expect(done.status).toBe("succeeded");
      expect(done.steps.c!.status).toBe("succeeded");
    } finally {
      await agent.stop();
      child?.kill("SIGTERM");
      rmSync(h, { recursive: true, force: true });
    }
  });
});
