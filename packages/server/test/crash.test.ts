import { fileURLToPath } from "node:url";
import { ForgeClient } from "@nexa/sdk";
import { openBackend, readCredentials } from "@nexa/server";
import { sql } from "kysely";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundleEntry, spawnServer } from "./bundle.js";
import { BACKENDS, CPU_WORKER, postgresAvailable } from "./helpers.js";
import { dirname, join } from "node:path";

const HAVE_PG = await postgresAvailable();
/** Load runs at least this long and until this many jobs are acknowledged (the box may be busy). */
const LOAD_MS = 1000;
const MIN_ACKED = 60;

let main: string;
beforeAll(async () => {
  main = await bundleEntry(fileURLToPath(new URL("./fixtures/server-main.ts", import.meta.url)));
});
afterAll(() => {
  if (main) rmSync(dirname(main), { recursive: true, force: true });
});

describe.each(BACKENDS)("server killed with SIGKILL under load on $name", (backend) => {
  const skip = backend.name === "postgres" && !HAVE_PG;

  test.skipIf(skip)("after restart every acknowledged job is there and the store is consistent", async () => {
    const env = await backend.create();
    const opts = { home: env.home, databaseUrl: env.databaseUrl, port: 0, rateLimitRps: 0, leaseTtlS: 3, heartbeatIntervalS: 1 };
    try {
      const first = await spawnServer(main, opts);
      const client = new ForgeClient({ url: first.url, apiKey: first.adminKey, timeoutMs: 5000 });
      const acked = new Set<string>();
      let stop = false;
      const producers = Array.from({ length: 3 }, async (_, p) => {
        for (let i = 0; !stop; i++) {
          try {
            if (i % 5 === 4) {
              for (const j of await client.submitJobs(Array.from({ length: 20 }, (_, k) => ({ type: "command" as const, spec: { argv: ["true", `${p}-${i}-${k}`] } })))) acked.add(j.id);
            } else {
              acked.add((await client.submitJob({ type: "command", spec: { argv: ["true", `${p}-${i}`] }, retry: { max_attempts: 3, backoff_s: 0 } })).id);
            }
          } catch {
            // Requests in flight when the server dies fail: only acknowledged jobs are promised.
          }
        }
      });
      const workers = Array.from({ length: 4 }, async (_, n) => {
        try {
          const w = await client.registerWorker({ name: `crash-w${n}`, capabilities: CPU_WORKER });
          for (let round = 0; !stop; round++) {
            const res = await client.claim(w.id, { wait_s: 0.2, max_jobs: 4 });
            for (const c of res?.claims ?? []) {
              await client.sendLogs(c.lease.id, { lines: [{ line: "a" }, { line: "b", stream: "stderr" }] });
              const pick = (round + n) % 4;
              if (pick === 0) await client.fail(c.lease.id, { error: { code: "exit_nonzero", message: "1" } });
              else if (pick === 1) await client.heartbeat(c.lease.id); // left running when the server dies
              else await client.complete(c.lease.id, { usage: { cpu_s: 0.5 } });
            }
          }
        } catch {
          // The worker loop ends when the server it talks to is killed.
        }
      });
      const t0 = Date.now();
      while ((Date.now() - t0 < LOAD_MS || acked.size < MIN_ACKED) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
      first.child.kill("SIGKILL");
      await first.exited;
      stop = true;
      await Promise.all([...producers, ...workers]);
      expect(acked.size).toBeGreaterThanOrEqual(MIN_ACKED);

      // The store as the crash left it (read while no server runs, so the snapshot is stable).
      await checkConsistent(env.databaseUrl, acked);
      // Restart on the same store: the admin key comes back from the credentials file.
      const second = await spawnServer(main, opts);
      try {
        expect(second.adminKey).toBe((await readCredentials(join(env.home, "credentials")))!.api_key);
        const listed = new Set<string>();
        const c1 = new ForgeClient({ url: second.url, apiKey: second.adminKey, timeoutMs: 10_000 });
        for (let cursor: string | undefined; ; ) {
          const page = await c1.listJobs({ limit: 1000, ...(cursor ? { cursor } : {}) });
          for (const j of page.items) listed.add(j.id);
          if (page.next_cursor === null) break;
          cursor = page.next_cursor;
        }
        expect([...acked].filter((id) => !listed.has(id))).toEqual([]);

        // And it recovers: leases of the dead server's workers expire, every job finishes.
        const c2 = new ForgeClient({ url: second.url, apiKey: second.adminKey, timeoutMs: 10_000 });
        const w = await c2.registerWorker({ name: "after-crash", capabilities: CPU_WORKER });
        const deadline = Date.now() + 20_000;
        for (;;) {
          const res = await c2.claim(w.id, { wait_s: 0.5, max_jobs: 16 });
          for (const c of res?.claims ?? []) {
            // On a loaded box a lease may run out before its turn: that job simply comes back.
            await c2.complete(c.lease.id, {}).catch((err: { code?: string }) => {
              if (err.code !== "lease_lost") throw err;
            });
          }
          const open = Number(
            (await c2.raw("GET", "/metrics").then((r) => r.text()))
              .split("\n")
              .filter((l) => /^nexa_queue_jobs\{status="(queued|running)"/.test(l))
              .reduce((s, l) => s + Number(l.split(" ").pop()), 0),
          );
          if (open === 0) break;
          expect(Date.now(), "jobs still open after recovery").toBeLessThan(deadline);
        }
        // Every job finished: nothing moves any more, so the store can be read again.
        await checkConsistent(env.databaseUrl, acked, true);
      } finally {
        second.child.kill("SIGTERM");
        await second.exited;
      }
    } finally {
      await env.cleanup();
    }
  }, 150_000);
});

/** The store's invariants, read straight from the database. */
async function checkConsistent(databaseUrl: string, acked: Set<string>, allTerminal = false): Promise<void> {
  const b = openBackend(databaseUrl);
  try {
    const jobs = await b.db.selectFrom("jobs").select(["id", "status", "lease_id", "log_seq"]).execute();
    const byId = new Map(jobs.map((j) => [j.id, j]));
    const missing = [...acked].filter((id) => !byId.has(id));
    expect(missing, "acknowledged jobs lost").toEqual([]);
    const attempts = await b.db.selectFrom("attempts").select(["id", "job_id", "status"]).execute();
    const attemptById = new Map(attempts.map((a) => [a.id, a]));
    const logCounts = new Map(
      (await b.db.selectFrom("job_logs").select(["job_id", sql<number>`count(*)`.as("n")]).groupBy("job_id").execute()).map((r) => [r.job_id, Number(r.n)]),
    );
    const usageCounts = new Map(
      (await b.db.selectFrom("usage_records").select(["job_id", sql<number>`count(*)`.as("n")]).groupBy("job_id").execute()).map((r) => [r.job_id, Number(r.n)]),
    );
    const problems: string[] = [];
    for (const j of jobs) {
      const own = attempts.filter((a) => a.job_id === j.id);
      if (j.status === "running") {
        const a = j.lease_id === null ? undefined : attemptById.get(j.lease_id);
        if (a?.status !== "active" || a.job_id !== j.id) problems.push(`${j.id} running without an active attempt`);
      } else if (j.lease_id !== null) problems.push(`${j.id} ${j.status} but holds lease ${j.lease_id}`);
      if (own.filter((a) => a.status === "active").length > (j.status === "running" ? 1 : 0)) problems.push(`${j.id} ${j.status} with active attempts`);
      if (j.log_seq !== (logCounts.get(j.id) ?? 0)) problems.push(`${j.id} log_seq ${j.log_seq} but ${logCounts.get(j.id) ?? 0} lines`);
      if (j.status === "succeeded" && own.filter((a) => a.status === "succeeded").length !== 1) problems.push(`${j.id} succeeded without exactly one succeeded attempt`);
      const finished = own.filter((a) => a.status === "succeeded" || a.status === "failed" || a.status === "preempted").length;
      if ((usageCounts.get(j.id) ?? 0) !== finished) problems.push(`${j.id} has ${usageCounts.get(j.id) ?? 0} usage records for ${finished} finished attempts`);
      if (allTerminal && !["succeeded", "failed", "canceled"].includes(j.status)) problems.push(`${j.id} still ${j.status}`);
    }
    for (const a of attempts) if (!byId.has(a.job_id)) problems.push(`attempt ${a.id} of a missing job`);
    expect(problems).toEqual([]);
  } finally {
    await b.close();
  }
}
