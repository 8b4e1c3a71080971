#!/usr/bin/env node
// Where add→start time goes, sample by sample: run.mjs's latency loop (an idle worker long-polls,
// a job is submitted every 20-70 ms) against a control plane that timestamps what it does, on one
// monotonic clock with the client. Each sample is split into
//   to-server   client sends POST /v1/jobs → the server sees the request
//   server      request → the submission's statement starts (auth, validation, building rows)
//   db          the statement's round trip as the control plane sees it (PostgreSQL only)
//   to-answer   the statement's answer → the worker's claim answer is written (end())
//   to-worker   that end() → the worker's client has the answer
// PostgreSQL's own execution time for each statement comes from its log when --pg-log=FILE names
// the server log and log_min_duration_statement is 0 (set it with ALTER SYSTEM; reset it after).
//
//   npx tsc -b packages/server && node bench/queue/segments.mjs [--backend=sqlite|postgres] [--samples=300] [--pg-log=/var/log/postgresql/postgresql-15-main.log]
import http from "node:http";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addToStartSamples } from "../lib/add-to-start.mjs";
import { freshPgDatabase } from "../lib/fresh-pg.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")).map(([k, v]) => [k, v ?? "1"]));
const backend = args.backend ?? "postgres";
const SAMPLES = Number(args.samples ?? 300);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const home = mkdtempSync(join(tmpdir(), "nexa-segments-"));
const out = join(home, "events.json");
const db = backend === "postgres" ? await freshPgDatabase("nexa_segments") : null;
const logStart = args["pg-log"] ? statSync(args["pg-log"]).size : 0;
const child = spawn(process.execPath, [new URL("segments-child.mjs", import.meta.url).pathname, JSON.stringify({ home, databaseUrl: db?.url, port: 0, rateLimitRps: 0 })], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, SEGMENTS_OUT: out } });
const info = JSON.parse(await new Promise((r) => createInterface({ input: child.stdout }).once("line", r)));
const agent = new http.Agent({ keepAlive: true });
const u = new URL(info.url);
const call = (method, path, body) =>
  new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = { authorization: `Bearer ${info.adminKey}`, ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}) };
    const req = http.request({ host: u.hostname, port: u.port, method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const t = now();
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, json: text ? JSON.parse(text) : undefined, t });
      });
    });
    req.on("error", reject);
    req.end(data);
  });

const samples = (await addToStartSamples(call, SAMPLES, now)).map(({ t0, t1 }) => ({ t0, t5: t1 }));
await new Promise((r) => {
  child.once("exit", r);
  child.kill("SIGTERM");
});
const events = JSON.parse(readFileSync(out, "utf8"));
await db?.drop();
rmSync(home, { recursive: true, force: true });

// PostgreSQL's own bind + execute time of each submission statement, in order (from its log).
let pgTimes = [];
if (args["pg-log"]) {
  const lines = readFileSync(args["pg-log"]).subarray(logStart).toString().split("\n");
  let bind = 0;
  for (const l of lines) {
    const m = /duration: ([0-9.]+) ms {2}(bind|execute) [^:]*: with j as \(insert into jobs/.exec(l);
    if (!m) continue;
    if (m[2] === "bind") bind = Number(m[1]);
    else pgTimes.push(bind + Number(m[1]));
  }
}
const submissions = events.filter((e) => e[0] === "query" && e[3].startsWith("with j as (insert into jobs"));
const rows = samples.map((s) => {
  const inside = (e) => e[1] >= s.t0 - 0.01 && e[1] <= s.t5 + 0.01;
  const req = events.find((e) => e[0] === "request" && e[2] === "POST /v1/jobs" && inside(e));
  const q = submissions.find(inside);
  const end = events.find((e) => e[0] === "end" && e[2].includes("/claim") && inside(e));
  const pgIndex = q ? submissions.indexOf(q) : -1;
  return {
    total: s.t5 - s.t0,
    "to-server": req ? req[1] - s.t0 : NaN,
    server: req && q ? q[1] - req[1] : NaN,
    db: q ? q[2] - q[1] : NaN,
    "pg-exec": pgIndex >= 0 && pgTimes.length === submissions.length ? pgTimes[pgIndex] : NaN,
    "to-answer": end ? end[1] - (q ? q[2] : req ? req[1] : NaN) : NaN,
    "to-worker": end ? s.t5 - end[1] : NaN,
  };
});
const keys = Object.keys(rows[0]);
const pct = (k, p) => {
  const v = rows.map((r) => r[k]).filter(Number.isFinite).sort((a, b) => a - b);
  return v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
};
const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : "–");
console.log(`add→start segments, ${backend}, ${rows.length} samples (ms)`);
console.log(`| segment | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|`);
for (const k of keys) console.log(`| ${k} | ${f(pct(k, 50))} | ${f(pct(k, 90))} | ${f(pct(k, 99))} | ${f(pct(k, 100))} |`);
const slow = rows.filter((r) => r.total > 5).sort((a, b) => b.total - a.total);
console.log(`\n${slow.length} samples over 5 ms; the slowest:`);
for (const r of slow.slice(0, 10)) console.log("  " + keys.map((k) => `${k} ${f(r[k])}`).join("  "));
