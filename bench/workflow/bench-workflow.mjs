#!/usr/bin/env node
// bench/workflow: how fast the workflow engine moves work along.
//
// 1. Step-to-step scheduling delay over a chain of no-op `command` steps (`true`): for each edge,
//    the child job's `running` event (its lease) minus the parent job's `succeeded` event, both
//    from the server's job_events. p50 / p99 / max. Peer, same run: the same chain driven by a
//    client over the HTTP API (submit, wait on the job's SSE stream, submit the next).
// 2. A 1,000-way matrix fan-out's total time (POST /v1/workflows → run finished) beside the same
//    1,000 jobs submitted directly in one POST /v1/jobs/batch (→ last job finished). Ratio.
//
// A real control plane (SQLite, in this process) and a real WorkerAgent (its own process).
//
//   npx tsc -b packages/cli && node bench/workflow/bench-workflow.mjs [--steps 200] [--fanout 1000] [--concurrency 8] [--json OUT]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ForgeClient } from "../../packages/sdk/dist/index.js";
import { startServer } from "../../packages/server/dist/index.js";

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "200" },
    fanout: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "8" },
    json: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const STEPS = Number(args.steps);
const FANOUT = Number(args.fanout);
const CONCURRENCY = Number(args.concurrency);

const loadAtStart = loadavg()[0];
const home = mkdtempSync(join(tmpdir(), "nexa-bench-wf-"));
const server = await startServer({ home, port: 0, rateLimitRps: 0 });
const client = new ForgeClient({ url: server.url, apiKey: server.adminKey });
const db = server.ctx.db;

const worker = spawn(process.execPath, [fileURLToPath(new URL("./worker.mjs", import.meta.url)), server.url, server.adminKey, "bench", String(CONCURRENCY), join(home, "work")], {
  stdio: ["ignore", "pipe", "inherit"],
});
await new Promise((resolve, reject) => {
  worker.stdout.once("data", resolve);
  worker.once("exit", (c) => reject(new Error(`worker exited ${c}`)));
});

const cleanup = async () => {
  worker.kill("SIGTERM");
  await new Promise((r) => worker.once("exit", r));
  await server.close();
  if (!args.keep) rmSync(home, { recursive: true, force: true });
};

/**
 * Waits for a run to end by reading its status row (cheap, like the direct jobs' count below), so
 * the control-plane CPU measured is the engine's and not that of rendering the run for a poller.
 */
async function waitRun(id) {
  for (;;) {
    const r = await db.selectFrom("workflow_runs").select("status").where("id", "=", id).executeTakeFirstOrThrow();
    if (["succeeded", "failed", "canceled"].includes(r.status)) return client.getWorkflowRun(id);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Nearest-rank percentile. */
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
const summary = (delays) => {
  const s = [...delays].sort((a, b) => a - b);
  return { n: s.length, p50_ms: pct(s, 50), p99_ms: pct(s, 99), max_ms: s.at(-1), mean_ms: Math.round((s.reduce((a, b) => a + b, 0) / s.length) * 10) / 10 };
};

/** Per job: the ts of its first `queued`, first `running` and `succeeded` events. */
async function eventTimes(jobIds) {
  const out = new Map();
  for (let i = 0; i < jobIds.length; i += 500) {
    const rows = await db
      .selectFrom("job_events")
      .select(["job_id", "type", "ts"])
      .where("job_id", "in", jobIds.slice(i, i + 500))
      .where("type", "in", ["queued", "running", "succeeded"])
      .orderBy("seq", "asc")
      .execute();
    for (const r of rows) {
      const e = out.get(r.job_id) ?? {};
      if (e[r.type] === undefined) e[r.type] = Number(r.ts);
      out.set(r.job_id, e);
    }
  }
  return out;
}

/**
 * Per edge: parent `succeeded` → child `running` (the whole delay), split at the child job's
 * `queued` event (its submission): engine (parent done → child submitted) and queue (child
 * submitted → leased by the waiting worker).
 */
async function edgeDelays(jobIds) {
  const t = await eventTimes(jobIds);
  const total = [];
  const engine = [];
  const queue = [];
  for (let i = 1; i < jobIds.length; i++) {
    const parent = t.get(jobIds[i - 1]);
    const child = t.get(jobIds[i]);
    total.push(child.running - parent.succeeded);
    engine.push(child.queued - parent.succeeded);
    queue.push(child.running - child.queued);
  }
  return { total, engine, queue };
}

const noop = (tag) => ({ type: "command", spec: { argv: ["true", tag] } });
const tag = Date.now().toString(36);

// Warm-up: JIT, worker workspace paths, SQLite pages.
for (let i = 0; i < 3; i++) await client.waitForJob((await client.submitJob(noop(`warm-${tag}-${i}`))).id);
await client.waitForWorkflow((await client.runWorkflow({ workflow: { name: "warm", steps: { a: { type: "command", with: { argv: ["true", `w-${tag}`] } }, b: { type: "command", needs: "a", with: { argv: ["true", `w2-${tag}`] } } } }, no_cache: true })).id, { pollMs: 50 });

// ── 1. chain ────────────────────────────────────────────────────────────────────────────
const steps = {};
for (let i = 0; i < STEPS; i++) steps[`s${i}`] = { type: "command", with: { argv: ["true", `chain-${tag}-${i}`] }, ...(i > 0 ? { needs: `s${i - 1}` } : {}) };
const chainStart = Date.now();
const chainRun = await client.runWorkflow({ workflow: { name: "bench-chain", steps }, no_cache: true });
const chainDone = await waitRun(chainRun.id);
if (chainDone.status !== "succeeded") throw new Error(`chain run ${chainDone.id} ${chainDone.status}: ${chainDone.error}`);
const chainWall = Date.parse(chainDone.finished_at) - chainStart;
const chainIds = Array.from({ length: STEPS }, (_, i) => chainDone.steps[`s${i}`].job_id);
const chainEdges = await edgeDelays(chainIds);
const chain = summary(chainEdges.total);

// Peer: a client drives the same chain by hand over the HTTP API.
const peerIds = [];
const peerStart = Date.now();
for (let i = 0; i < STEPS; i++) {
  const j = await client.submitJob(noop(`peer-${tag}-${i}`));
  const done = await client.waitForJob(j.id);
  if (done.status !== "succeeded") throw new Error(`peer job ${j.id} ${done.status}`);
  peerIds.push(j.id);
}
const peerWall = Date.now() - peerStart;
const peerEdges = await edgeDelays(peerIds);
const peer = summary(peerEdges.total);

// ── 2. fan-out ──────────────────────────────────────────────────────────────────────────
async function waitAll(ids) {
  for (;;) {
    let done = 0;
    for (let i = 0; i < ids.length; i += 500) {
      const r = await db
        .selectFrom("jobs")
        .select((eb) => eb.fn.countAll().as("n"))
        .where("id", "in", ids.slice(i, i + 500))
        .where("status", "in", ["succeeded", "failed", "canceled"])
        .executeTakeFirstOrThrow();
      done += Number(r.n);
    }
    if (done === ids.length) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
async function lastFinished(ids) {
  let last = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const r = await db.selectFrom("jobs").select((eb) => eb.fn.max("finished_at").as("t")).where("id", "in", ids.slice(i, i + 500)).executeTakeFirstOrThrow();
    last = Math.max(last, Number(r.t));
  }
  return last;
}

/** Control-plane CPU (this process: server + a light polling client) over a phase, in ms. */
const cpuMs = (since) => {
  const d = process.cpuUsage(since);
  return Math.round((d.user + d.system) / 1000);
};

let cpu0 = process.cpuUsage();
const directStart = Date.now();
const direct = await client.submitJobs(Array.from({ length: FANOUT }, (_, i) => noop(`direct-${tag}-${i}`)));
const directIds = direct.map((j) => j.id);
await waitAll(directIds);
const directMs = (await lastFinished(directIds)) - directStart;
const directCpu = cpuMs(cpu0);

cpu0 = process.cpuUsage();
const fanStart = Date.now();
const fanRun = await client.runWorkflow({
  workflow: { name: "bench-fanout", steps: { shard: { type: "command", matrix: { i: Array.from({ length: FANOUT }, (_, i) => i) }, with: { argv: ["true", `fan-${tag}-\${{ matrix.i }}`] } } } },
  no_cache: true,
});
const fanDone = await waitRun(fanRun.id);
if (fanDone.status !== "succeeded") throw new Error(`fan-out run ${fanDone.id} ${fanDone.status}: ${fanDone.error}`);
const fanMs = Date.parse(fanDone.finished_at) - fanStart;
const fanCpu = cpuMs(cpu0);
const fanIds = fanDone.steps.shard.matrix.map((m) => m.job_id);
const fanLastJobMs = (await lastFinished(fanIds)) - fanStart;

await cleanup();

const result = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, load_1m: { start: Math.round(loadAtStart * 10) / 10, end: Math.round(loadavg()[0] * 10) / 10 } },
  worker_concurrency: CONCURRENCY,
  chain: { steps: STEPS, workflow: { ...chain, wall_ms: chainWall, engine_part: summary(chainEdges.engine), queue_part: summary(chainEdges.queue) }, client_driven: { ...peer, wall_ms: peerWall, client_part: summary(peerEdges.engine), queue_part: summary(peerEdges.queue) }, p99_ratio: Math.round((chain.p99_ms / peer.p99_ms) * 100) / 100 },
  fanout: { jobs: FANOUT, workflow_ms: fanMs, workflow_last_job_ms: fanLastJobMs, direct_ms: directMs, ratio: Math.round((fanMs / directMs) * 100) / 100, control_plane_cpu_ms: { workflow: fanCpu, direct: directCpu } },
};
const line = (label, s) => `${label.padEnd(34)} p50 ${String(s.p50_ms).padStart(4)} ms   p99 ${String(s.p99_ms).padStart(4)} ms   max ${String(s.max_ms).padStart(4)} ms   (${s.n} edges, ${(s.wall_ms / 1000).toFixed(1)} s)`;
console.log(`bench/workflow — ${result.machine.cpus} CPUs, ${result.machine.model}, node ${process.version}, worker concurrency ${CONCURRENCY}, load average ${result.machine.load_1m.start} → ${result.machine.load_1m.end}`);
console.log(`\nstep → dependent's lease, ${STEPS}-step chain of \`true\`:`);
console.log(line("  workflow engine", result.chain.workflow));
const part = (label, s) => `    ${label.padEnd(30)} p50 ${String(s.p50_ms).padStart(4)} ms   p99 ${String(s.p99_ms).padStart(4)} ms   max ${String(s.max_ms).padStart(4)} ms`;
console.log(part("done → next submitted", result.chain.workflow.engine_part));
console.log(part("submitted → leased", result.chain.workflow.queue_part));
console.log(line("  client-driven (submit, SSE wait)", result.chain.client_driven));
console.log(part("done → next submitted", result.chain.client_driven.client_part));
console.log(part("submitted → leased", result.chain.client_driven.queue_part));
console.log(`  ratio (engine / client-driven p99): ${result.chain.p99_ratio}   target p99 < 50 ms: ${chain.p99_ms < 50 ? "met" : "NOT met"}`);
console.log(`\n${FANOUT}-way fan-out of \`true\`:`);
console.log(`  workflow (POST → run finished)    ${(fanMs / 1000).toFixed(2)} s   (last job finished at ${(fanLastJobMs / 1000).toFixed(2)} s)`);
console.log(`  direct batch (POST → last job)    ${(directMs / 1000).toFixed(2)} s`);
console.log(`  ratio (workflow / direct):        ${result.fanout.ratio}`);
console.log(`  control-plane CPU: workflow ${(fanCpu / 1000).toFixed(2)} s, direct ${(directCpu / 1000).toFixed(2)} s (${((fanCpu - directCpu) / FANOUT).toFixed(2)} ms more per job)`);
if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2) + "\n");
