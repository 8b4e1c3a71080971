// The store-level loop of bench/queue (run.mjs, sqlite-statements.mjs): the Queue called in-process,
// no HTTP, over N pre-filled no-op command jobs, drained by 8 loops of tryClaimRows(500) + completeMany.

/** A migrated backend's queue with `n` queued no-op jobs and `count` online workers (no GPUs, no labels). */
export async function prefilledQueue(server, backend, n, count = 8) {
  await server.migrate(backend);
  const bus = new server.Bus(backend);
  await bus.start();
  const prices = () => ({ currency: "USD", cpu_hour: 0.04, gpu_hour: {}, gpu_hour_default: 1, tokens_in_per_1k: 0, tokens_out_per_1k: 0 });
  const queue = new server.Queue(backend, bus, { leaseTtlMs: 30_000, heartbeatIntervalMs: 5_000 }, prices);
  const org = "org_bench";
  await backend.db.insertInto("orgs").values({ id: org, name: "bench", created_at: Date.now(), max_running: null, budget_usd: null }).execute();
  const caps = { cpus: 4, memory_gb: 8, gpus: [], labels: {} };
  const subs = Array.from({ length: n }, (_, i) => ({ type: "command", spec: { argv: ["true", String(i)] }, priority: 0, requirements: {}, limits: {}, project: "default" }));
  for (let i = 0; i < n; i += 1000) await queue.submit(org, subs.slice(i, i + 1000));
  const workers = [];
  for (let i = 0; i < count; i++) {
    const row = { id: `wrk_${i}`, org_id: org, name: `w${i}`, capabilities: JSON.stringify(caps), accepts: "[]", status: "online", version: null, created_at: Date.now(), last_seen_at: Date.now() };
    await backend.db.insertInto("workers").values(row).execute();
    workers.push(row);
  }
  return { bus, queue, org, caps, workers };
}

/** Every worker claims 500 at a time and finishes them in one batch until the queue is empty; answers the jobs finished. */
export async function drain({ queue, org, caps, workers }) {
  let done = 0;
  await Promise.all(
    workers.map(async (w) => {
      for (;;) {
        // The rows the HTTP claim serialises (claimsJson), as the claim route gets them.
        const claims = await queue.tryClaimRows(org, w, caps, [], 500);
        if (claims.length === 0) break;
        const r = await queue.completeMany(org, claims.map((c) => ({ lease_id: c.lease.id, outputs: {} })));
        done += r.filter((x) => x.status === "succeeded").length;
      }
    }),
  );
  return done;
}
