#!/usr/bin/env node
// Queue benchmark of Nexa Forge against graphile-worker and pg-boss, measured in the same run.
//
//   npx tsc -b packages/server && node bench/queue/run.mjs [--n=20000] [--backends=sqlite,postgres] [--peers=/tmp/nexa-peers|0] [--samples=200]
//     [--only=e2e,process,store,latency] [--cpu-prof=DIR] [--latency-out=PREFIX]
//
// Measures, per backend:
//   e2e      jobs/s through the HTTP API: 2 producers submit batches (POST /v1/jobs/batch) while
//            8 workers long-poll claims (max_jobs 64) and finish them (POST /v1/leases/complete);
//            clock from the first submit to the last completion; with the control plane's and the
//            PostgreSQL backends' CPU time per job (robust where wall clock on a shared box is not).
//   process  the same 8 HTTP workers on a pre-filled queue (the peers' "process" method).
//   store    Queue called in-process (no HTTP): 8 loops of tryClaimRows(500) + completeMany, pre-filled;
//            with the CPU time per job of this process and of the PostgreSQL backends.
//   latency  add→start for an idle long-polling worker: POST /v1/jobs awaited, then the time
//            until the worker's claim answer arrives (so it includes the add round trip);
//            --latency-out=PREFIX writes the samples, in order, to PREFIX.<backend>.json.
// Peers (PostgreSQL database qbench): graphile-worker 0.17 default and lq500, pg-boss 10 workers-bs,
// each one measurement of the harness in ../../../shared/bench/peers; and what lq500 costs
// PostgreSQL per job (cluster CPU from /proc, WAL bytes): its `process` run minus an `enqueue` run
// of the same jobs, beside the same figures for our store level.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir, loadavg, cpus } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freshPgDatabase, PG_ADMIN } from "../lib/fresh-pg.mjs";
import { addToStartSamples } from "../lib/add-to-start.mjs";
import { drain, prefilledQueue } from "../lib/store-level.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")).map(([k, v]) => [k, v ?? "1"]));
const N = Number(args.n ?? 20000);
// --backends=none runs only the peers (so each invocation stays short on a shared box).
const BACKENDS = (args.backends ?? "sqlite,postgres").split(",").filter((b) => b === "sqlite" || b === "postgres");
const PEERS = args.peers ?? "/tmp/nexa-peers";
const SAMPLES = Number(args.samples ?? 200);
const WORKERS = 8;
// --cpu-prof=DIR: the control-plane child writes a V8 CPU profile there (open in Chrome DevTools).
const CHILD_FLAGS = args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${args["cpu-prof"]}`] : [];

const dist = join(here, "../../packages/server/dist/index.js");
if (!existsSync(dist)) throw new Error("build first: npx tsc -b packages/server");
const server = await import(dist);

const log = (...a) => process.stderr.write(a.join(" ") + "\n");
const pct = (s, p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

// ── a minimal keep-alive JSON client (node:http: less overhead than fetch) ──────────────────
function client(base, key) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const u = new URL(base);
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        { host: u.hostname, port: u.port, method, path, agent, headers: { authorization: `Bearer ${key}`, ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}) } },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode >= 400) return reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
            resolve({ status: res.statusCode, json: text ? JSON.parse(text) : undefined });
          });
        },
      );
      req.on("error", reject);
      req.end(data);
    });
}

// WAL bytes written so far by the whole PostgreSQL cluster: per job, how much a queue writes
// (rows, index entries, full-page images) — unlike time, the same from run to run.
async function pgWalBytes() {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  const { rows } = await c.query("select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text as b");
  await c.end();
  return Number(rows[0].b);
}

// CPU time (ms) of the PostgreSQL backends serving a database: its share of the work per job,
// which wall-clock figures on a shared 2-core box hide. Read from /proc (same machine).
async function pgCpuMs(databaseUrl) {
  const name = new URL(databaseUrl).pathname.slice(1);
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  const { rows } = await c.query("select pid from pg_stat_activity where datname = $1", [name]);
  await c.end();
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10;
}

// CPU time (ms) of the whole PostgreSQL cluster so far: the postmaster, every live child, and the
// children it has reaped (cutime/cstime). Unlike pgCpuMs it counts backends that have exited, so
// it also measures a peer's run from outside: the difference across the run, over its jobs.
async function pgClusterCpuMs() {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  const stat = (pid) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const { rows } = await c.query("select pg_backend_pid() as pid");
  // This connection's backend is a child of the postmaster (read before it exits).
  const postmaster = Number(stat(rows[0].pid)[1]);
  await c.end();
  const own = stat(postmaster);
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const f = stat(entry);
      if (Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10;
}

/** PostgreSQL cluster CPU and WAL per job of a peer's run: `process` minus an `enqueue` of the same jobs. */
function peerPgCost(script, processArgv) {
  const measure = async (argv) => {
    const cpu0 = await pgClusterCpuMs();
    const wal0 = await pgWalBytes();
    const r = peer(script, argv);
    return { r, cpu: (await pgClusterCpuMs()) - cpu0, wal: (await pgWalBytes()) - wal0 };
  };
  return (async () => {
    const enq = await measure(["enqueue", `--n=${N}`, "--single=0"]);
    const proc = await measure(processArgv);
    const jobs = proc.r.completed ?? 0;
    if (!proc.r.ok || !enq.r.ok || jobs === 0) return { ok: false };
    return { ok: true, jobs, jobs_s: proc.r.jobs_s, pg_cpu_us_per_job: round(((proc.cpu - enq.cpu) * 1000) / jobs), pg_wal_bytes_per_job: round((proc.wal - enq.wal) / jobs, 0) };
  })();
}

async function freshStore(backend) {
  const home = mkdtempSync(join(tmpdir(), "nexa-bench-"));
  if (backend === "sqlite") return { home, databaseUrl: `sqlite:${join(home, "forge.db")}`, drop: async () => rmSync(home, { recursive: true, force: true }) };
  const db = await freshPgDatabase("nexa_bench");
  return {
    home,
    databaseUrl: db.url,
    drop: async () => {
      await db.drop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

async function startChild(store) {
  const child = spawn(process.execPath, [...CHILD_FLAGS, join(here, "server-child.mjs"), JSON.stringify({ home: store.home, databaseUrl: store.databaseUrl, port: 0, rateLimitRps: 0 })], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const line = await new Promise((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", (c) => reject(new Error(`server exited ${c}`)));
  });
  const info = JSON.parse(line);
  // stop() answers the child's CPU time (ms), which it prints on SIGTERM.
  const stop = () =>
    new Promise((resolve) => {
      let cpu;
      lines.once("line", (l) => (cpu = JSON.parse(l).cpu_ms));
      child.once("exit", () => resolve(cpu));
      child.kill("SIGTERM");
    });
  return { ...info, stop };
}

const noop = (i) => ({ type: "command", spec: { argv: ["true", String(i)] } });

async function httpWorkers(call, count, until) {
  let done = 0;
  const ws = await Promise.all(Array.from({ length: WORKERS }, (_, i) => call("POST", "/v1/workers", { name: `bench-${i}`, capabilities: { cpus: 4, memory_gb: 8, gpus: [], labels: {} } })));
  const loops = ws.map(async ({ json: w }) => {
    while (done < count) {
      const res = await call("POST", `/v1/workers/${w.id}/claim`, { wait_s: 1, max_jobs: 64 });
      if (res.status === 204) continue;
      const out = await call("POST", "/v1/leases/complete", { leases: res.json.claims.map((c) => ({ lease_id: c.lease.id })) });
      done += out.json.items.filter((it) => it.status === "succeeded").length;
      if (done >= count) until();
    }
  });
  return { loops, done: () => done };
}

async function e2e(backend, prefill) {
  const store = await freshStore(backend);
  const srv = await startChild(store);
  const call = client(srv.url, srv.adminKey);
  let stopped = false;
  try {
    const submit = async (from, to) => {
      for (let i = from; i < to; i += 500) await call("POST", "/v1/jobs/batch", { jobs: Array.from({ length: Math.min(500, to - i) }, (_, k) => noop(i + k)) });
    };
    if (prefill) await submit(0, N);
    let finish;
    const finished = new Promise((r) => (finish = r));
    const t0 = performance.now();
    const w = await httpWorkers(call, N, () => finish());
    if (!prefill) await Promise.all([submit(0, N / 2), submit(N / 2, N)]);
    await finished;
    const ms = performance.now() - t0;
    await Promise.all(w.loops);
    const check = await call("GET", "/v1/jobs?status=succeeded&limit=1");
    if (!check.json.items.length) throw new Error("nothing succeeded?");
    const dbCpu = backend === "postgres" ? await pgCpuMs(store.databaseUrl) : undefined;
    const serverCpu = await srv.stop();
    stopped = true;
    return { jobs: w.done(), ms: round(ms), jobs_per_s: round((N / ms) * 1000), server_cpu_us_per_job: round((serverCpu * 1000) / N), ...(dbCpu !== undefined ? { pg_cpu_us_per_job: round((dbCpu * 1000) / N) } : {}) };
  } finally {
    if (!stopped) await srv.stop();
    await store.drop();
  }
}

async function latency(backend) {
  const store = await freshStore(backend);
  const srv = await startChild(store);
  const call = client(srv.url, srv.adminKey);
  try {
    const lat = (await addToStartSamples(call, SAMPLES)).map((x) => x.t1 - x.t0);
    if (args["latency-out"]) writeFileSync(`${args["latency-out"]}.${backend}.json`, JSON.stringify(lat));
    lat.sort((a, b) => a - b);
    return { samples: lat.length, p50_ms: round(pct(lat, 50), 2), p99_ms: round(pct(lat, 99), 2), max_ms: round(lat.at(-1), 2) };
  } finally {
    await srv.stop();
    await store.drop();
  }
}

async function storeLevel(backend) {
  const store = await freshStore(backend);
  const b = server.openBackend(store.databaseUrl);
  try {
    const fixture = await prefilledQueue(server, b, N, WORKERS);
    const cpu0 = process.cpuUsage();
    const pg0 = backend === "postgres" ? await pgCpuMs(store.databaseUrl) : 0;
    const cluster0 = backend === "postgres" ? await pgClusterCpuMs() : 0;
    const wal0 = backend === "postgres" ? await pgWalBytes() : 0;
    const t0 = performance.now();
    const done = await drain(fixture);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const pgMs = backend === "postgres" ? (await pgCpuMs(store.databaseUrl)) - pg0 : undefined;
    const clusterMs = backend === "postgres" ? (await pgClusterCpuMs()) - cluster0 : undefined;
    const wal = backend === "postgres" ? (await pgWalBytes()) - wal0 : undefined;
    await fixture.bus.stop();
    return {
      jobs: done,
      ms: round(ms),
      jobs_per_s: round((done / ms) * 1000),
      cpu_us_per_job: round((cpu.user + cpu.system) / done),
      ...(pgMs !== undefined ? { pg_cpu_us_per_job: round((pgMs * 1000) / done), pg_cluster_cpu_us_per_job: round((clusterMs * 1000) / done), pg_wal_bytes_per_job: round(wal / done, 0) } : {}),
    };
  } finally {
    await b.close();
    await store.drop();
  }
}

function peer(script, argv) {
  const env = { ...process.env, DATABASE_URL: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/qbench", NO_LOG_SUCCESS: "1" };
  try {
    const out = execFileSync("timeout", ["-k", "5", "120", process.execPath, join(PEERS, script), ...argv], { cwd: PEERS, env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return JSON.parse(out.trim().split("\n").at(-1));
  } catch (err) {
    return { ok: false, error: String(err.message).slice(0, 200) };
  }
}

const results = { when: new Date().toISOString(), n: N, node: process.version, cpus: cpus().length, loadavg_start: loadavg().map((x) => round(x, 2)), ours: {}, peers: {} };
const ONLY = args.only ? args.only.split(",") : ["e2e", "process", "store", "latency"];
const skipped = { skipped: true };
for (const backend of BACKENDS) {
  log(`[${backend}] e2e over HTTP…`);
  const e = ONLY.includes("e2e") ? await e2e(backend, false) : skipped;
  log(`[${backend}] process (pre-filled) over HTTP…`);
  const p = ONLY.includes("process") ? await e2e(backend, true) : skipped;
  log(`[${backend}] store level…`);
  const s = ONLY.includes("store") ? await storeLevel(backend) : skipped;
  log(`[${backend}] add→start latency…`);
  const l = ONLY.includes("latency") ? await latency(backend) : skipped;
  results.ours[backend] = { e2e: e, process: p, store: s, latency: l };
  log(JSON.stringify(results.ours[backend]));
}
if (args.peers !== "0") {
  const runs = [
    ["graphile-worker default c=8", "bench-graphile-worker.mjs", ["process", "--c=8", "--variant=default"]],
    ["graphile-worker lq500 c=8", "bench-graphile-worker.mjs", ["process", "--c=8", "--variant=lq500"]],
    ["graphile-worker latency", "bench-graphile-worker.mjs", ["latency", "--variant=default", `--samples=${SAMPLES}`]],
    ["pg-boss workers-bs c=8", "bench-pg-boss.mjs", ["process", "--c=8", "--variant=workers-bs"]],
    ["pg-boss latency", "bench-pg-boss.mjs", ["latency", "--samples=60"]],
  ];
  for (const [name, script, argv] of runs) {
    log(`[peer] ${name}…`);
    results.peers[name] = peer(script, argv);
    log(JSON.stringify(results.peers[name]).slice(0, 300));
  }
  // What graphile-worker's best costs PostgreSQL per job, measured as ours is (whole cluster).
  log("[peer] graphile-worker lq500 c=8, PostgreSQL CPU and WAL per job (process run minus enqueue run)…");
  results.peers["graphile-worker lq500 pg cost"] = await peerPgCost("bench-graphile-worker.mjs", ["process", "--c=8", "--variant=lq500"]);
  log(JSON.stringify(results.peers["graphile-worker lq500 pg cost"]));
}
results.loadavg_end = loadavg().map((x) => round(x, 2));

// ── the table, with ratios ──────────────────────────────────────────────────────────────────
const P = results.peers;
const gwBest = Math.max(P["graphile-worker default c=8"]?.jobs_s ?? 0, P["graphile-worker lq500 c=8"]?.jobs_s ?? 0);
const gwDefault = P["graphile-worker default c=8"]?.jobs_s;
const bossBest = P["pg-boss workers-bs c=8"]?.jobs_s;
const ratio = (a, b) => (a && b ? `${round(a / b, 2)}×` : "–");
const lines = [];
lines.push(`| measurement | backend | Nexa Forge | graphile-worker (best of default / lq500, c=8) | ratio | pg-boss (workers-bs, c=8) | ratio |`);
lines.push(`|---|---|---|---|---|---|---|`);
for (const [backend, r] of Object.entries(results.ours)) {
  lines.push(`| e2e HTTP submit→claim→complete, jobs/s | ${backend} | ${r.e2e.jobs_per_s} | ${gwBest || "–"} | ${ratio(r.e2e.jobs_per_s, gwBest)} | ${bossBest ?? "–"} | ${ratio(r.e2e.jobs_per_s, bossBest)} |`);
  lines.push(`| HTTP claim→complete on a pre-filled queue, jobs/s | ${backend} | ${r.process.jobs_per_s} | ${gwBest || "–"} | ${ratio(r.process.jobs_per_s, gwBest)} | ${bossBest ?? "–"} | ${ratio(r.process.jobs_per_s, bossBest)} |`);
  lines.push(`| store-level claim+complete (batched), jobs/s | ${backend} | ${r.store.jobs_per_s} | ${gwBest || "–"} | ${ratio(r.store.jobs_per_s, gwBest)} | ${bossBest ?? "–"} | ${ratio(r.store.jobs_per_s, bossBest)} |`);
}
const gl = P["graphile-worker latency"];
const bl = P["pg-boss latency"];
const gwCost = P["graphile-worker lq500 pg cost"];
const pgStore = results.ours.postgres?.store;
if (pgStore?.pg_cluster_cpu_us_per_job !== undefined && gwCost?.ok) {
  lines.push(`| PostgreSQL cluster CPU µs / WAL bytes per job, store level | postgres | ${pgStore.pg_cluster_cpu_us_per_job} / ${pgStore.pg_wal_bytes_per_job} | ${gwCost.pg_cpu_us_per_job} / ${gwCost.pg_wal_bytes_per_job} (lq500, process − enqueue) | ${ratio(pgStore.pg_cluster_cpu_us_per_job, gwCost.pg_cpu_us_per_job)} / ${ratio(pgStore.pg_wal_bytes_per_job, gwCost.pg_wal_bytes_per_job)} as much | – | – |`);
}
for (const [backend, r] of Object.entries(results.ours)) {
  lines.push(`| add→start p50 / p99 ms | ${backend} | ${r.latency.p50_ms} / ${r.latency.p99_ms} | ${gl?.p50_ms ?? "–"} / ${gl?.p99_ms ?? "–"} (default) | ${ratio(gl?.p99_ms, r.latency.p99_ms)} faster at p99 | ${bl?.p50_ms ?? "–"} / ${bl?.p99_ms ?? "–"} | ${ratio(bl?.p99_ms, r.latency.p99_ms)} faster at p99 |`);
}
lines.push("");
lines.push(`graphile-worker default c=8: ${gwDefault ?? "–"} jobs/s; lq500 c=8: ${P["graphile-worker lq500 c=8"]?.jobs_s ?? "–"} jobs/s.`);
lines.push(`load average at start ${results.loadavg_start.join(", ")}, at end ${results.loadavg_end.join(", ")} (${results.cpus} CPUs).`);
console.log(lines.join("\n"));
console.log("\n```json\n" + JSON.stringify(results, null, 1) + "\n```");
