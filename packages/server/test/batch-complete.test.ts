import { describe, expect, test } from "vitest";
import { BACKENDS, serverForSuite, CPU_WORKER, createOrg, http, postgresAvailable } from "./helpers.js";

const HAVE_PG = await postgresAvailable();

describe.each(BACKENDS)("batch complete on $name", (backend) => {
  const { skip, t } = serverForSuite(backend, HAVE_PG);

  test.skipIf(skip)("finishes each live lease; stale, unknown, repeated and foreign leases get their own error", async () => {
    const { client } = t;
    const jobs = await client.submitJobs(Array.from({ length: 6 }, (_, i) => ({ type: "command" as const, spec: { argv: ["n", String(i)] }, project: "batch" })));
    const w = await client.registerWorker({ name: "batcher", capabilities: CPU_WORKER });
    const res = (await client.claim(w.id, { wait_s: 1, max_jobs: 6 }))!;
    expect(res.claims).toHaveLength(6);
    const [l0, l1, l2, l3, l4, l5] = res.claims.map((c) => c.lease.id) as [string, string, string, string, string, string];
    await client.complete(l5, {}); // already finished: stale
    const other = await createOrg(t, "batch-other");
    const otherJob = await other.client.submitJob({ type: "command", spec: { argv: ["x"] } });
    const ow = await other.client.registerWorker({ name: "ow", capabilities: CPU_WORKER });
    const foreign = (await other.client.claim(ow.id, { wait_s: 1 }))!.lease.id;
    const body = {
      leases: [
        { lease_id: l0, usage: { cpu_s: 3600 } },
        { lease_id: l1, outputs: { "out.txt": { digest: `sha256:${"1".repeat(64)}`, size: 3, media_type: "text/plain" } } },
        { lease_id: l5 },
        { lease_id: "lease_nothing" },
        { lease_id: l2 },
        { lease_id: l2 },
        { lease_id: foreign },
        { lease_id: l3, manifest: { software: { python: "3.12" } } },
      ],
    };
    const ans = await http(t.server.url, "POST", "/v1/leases/complete", { key: t.server.adminKey!, body });
    expect(ans.status).toBe(200);
    const items = ans.json.items as { lease_id: string; status?: string; error?: { code: string } }[];
    expect(items.map((i) => i.status ?? i.error!.code)).toEqual(["succeeded", "succeeded", "lease_lost", "not_found", "succeeded", "lease_lost", "not_found", "succeeded"]);
    expect(items.map((i) => i.lease_id)).toEqual(body.leases.map((l) => l.lease_id));
    const byLease = new Map(res.claims.map((c) => [c.lease.id, c.job.id]));
    const j0 = await client.getJob(byLease.get(l0)!);
    expect(j0.status).toBe("succeeded");
    expect(j0.usage.cpu_s).toBe(3600);
    expect(j0.usage.cost_usd).toBeCloseTo(0.04, 9); // default price table: 0.04 per CPU-hour
    expect((await client.getJob(byLease.get(l1)!)).outputs?.["out.txt"]?.size).toBe(3);
    expect((await client.getManifest(byLease.get(l3)!)).attempts[0]!.software).toEqual({ python: "3.12" });
    expect((await client.getJob(byLease.get(l4)!)).status).toBe("running");
    await expect(client.heartbeat(l0)).rejects.toMatchObject({ code: "lease_lost" });
    expect((await client.heartbeat(l4)).cancel_requested).toBe(false);
    // The other org's job is untouched.
    expect((await other.client.getJob(otherJob.id)).status).toBe("running");
    const usage = await client.getUsage({ group_by: "project" });
    const batchRow = usage.rows.find((r) => r.key === "batch");
    expect(batchRow?.attempts).toBe(5);
    // The usage records carry what each lease reported: l0's CPU hour at 0.04 per CPU-hour.
    expect(batchRow?.cpu_s).toBeCloseTo(3600, 6);
    expect(batchRow?.cost_usd).toBeGreaterThanOrEqual(0.04);
    const events: string[] = [];
    for await (const e of client.events(byLease.get(l2)!)) events.push(e.type);
    expect(events).toEqual(["queued", "running", "succeeded"]);
    expect(jobs).toHaveLength(6);
    // Validation names the field, and an empty batch is refused.
    const bad = await http(t.server.url, "POST", "/v1/leases/complete", { key: t.server.adminKey!, body: { leases: [{ lease_id: "" }] } });
    expect(bad.status).toBe(422);
    expect(bad.json.error.details[0].path).toBe("leases.0.lease_id");
    expect((await http(t.server.url, "POST", "/v1/leases/complete", { key: t.server.adminKey!, body: { leases: [] } })).status).toBe(422);
  });
});
