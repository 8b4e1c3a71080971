#!/usr/bin/env node
// The store-level loop of run.mjs (8 loops of tryClaimRows(500) + completeMany over N pre-filled
// no-op jobs) on SQLite, with the time better-sqlite3 spends in each statement text (execution and
// reading rows; JavaScript around it is not counted), per job. Timing every call adds overhead, so
// compare the statements' shares, and builds, within one run of this script, not with run.mjs.
//
//   npx tsc -b packages/server && node bench/queue/sqlite-statements.mjs [--n=20000]
import SQLite from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drain, prefilledQueue } from "../lib/store-level.mjs";
const server = await import("../../packages/server/dist/index.js");
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")).map(([k, v]) => [k, v ?? "1"]));
const T = new Map();
{
  const orig = SQLite.prototype.prepare;
  SQLite.prototype.prepare = function (sql) {
    const st = orig.call(this, sql);
    for (const m of ["run", "all", "get"]) {
      const f = st[m];
      // Keyed by the text's start, or what follows a json_each CTE (those share their start).
      const flat = sql.replace(/\s+/g, " ");
      const j = flat.indexOf("from json_each(?)) ");
      const key = j >= 0 ? "[json_each] " + flat.slice(j + 19, j + 100) : flat.slice(0, 90);
      st[m] = function (...a) {
        const t0 = performance.now();
        try {
          return f.apply(st, a);
        } finally {
          const e = T.get(key) ?? [0, 0];
          e[0] += performance.now() - t0;
          e[1]++;
          T.set(key, e);
        }
      };
    }
    return st;
  };
}
const N = Number(args.n ?? 20000);
const home = mkdtempSync(join(tmpdir(), "nexa-sqlite-statements-"));
const b = server.openBackend(`sqlite:${join(home, "forge.db")}`);
const fixture = await prefilledQueue(server, b, N);
T.clear();
const t0 = performance.now();
const c0 = process.cpuUsage();
await drain(fixture);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(c0);
let total = 0;
for (const [, [t]] of T) total += t;
console.log(`${N} jobs: ${Math.round((N / ms) * 1000)} jobs/s, ${((cpu.user + cpu.system) / N).toFixed(1)} CPU us per job, ${((total * 1000) / N).toFixed(1)} us per job in SQLite statements:`);
for (const [k, [t, n]] of [...T].sort((x, y) => y[1][0] - x[1][0]).slice(0, 14)) console.log(`${((t * 1000) / N).toFixed(1).padStart(7)} us/job ${String(n).padStart(5)} calls  ${k}`);
await fixture.bus.stop();
await b.close();
rmSync(home, { recursive: true, force: true });
