import { describe, expect, test } from "vitest";
import { claimsJson, jobFromRow, jobJson, type ClaimedRow } from "./rows.js";
import type { JobsTable } from "./store/schema.js";

const base: JobsTable = {
  id: "job_1",
  org_id: "org_1",
  project: "default",
  type: "command",
  name: null,
  status: "running",
  spec: JSON.stringify({ argv: ["echo", 'a "quoted" \\ line\n', "ünï"], env: { A: "1" } }),
  priority: 3,
  requirements: JSON.stringify({ cpus: 2, labels: { zone: "eu" } }),
  limits: JSON.stringify({ max_runtime_s: 60 }),
  retry: JSON.stringify({ max_attempts: 3, backoff_s: 1, max_backoff_s: 10 }),
  req_gpus: 0,
  req_cpus: 2,
  req_memory_gb: 0,
  req_complex: 1,
  attempt: 2,
  failures: 1,
  max_attempts: 3,
  created_at: 1_700_000_000_123,
  started_at: 1_700_000_001_000,
  finished_at: null,
  run_after: 1_700_000_000_123,
  worker_id: "wrk_1",
  lease_id: "lease_1",
  outputs: null,
  error: null,
  usage: JSON.stringify({ wall_s: 1.5, cpu_s: 0.25, gpu_s: { H100: 2 }, tokens_in: 0, tokens_out: 0, cost_usd: 0.01 }),
  cancel_requested: 0,
  idempotency_key: null,
  workflow_run_id: null,
  log_seq: 0,
};

describe("jobJson", () => {
  const rows: [string, JobsTable][] = [
    ["running, nulls", base],
    ["finished with outputs, error, name, run id", { ...base, status: "failed", name: "n\u2028x", finished_at: 1_700_000_009_000, outputs: JSON.stringify({ "a.txt": { digest: "sha256:0", size: 1 } }), error: JSON.stringify({ code: "exit_1", message: "boom" }), cancel_requested: 1, workflow_run_id: "wfr_1" }],
    ["queued in backoff (run_after shown)", { ...base, status: "queued", started_at: null, worker_id: null, run_after: Date.now() + 60_000 }],
    ["queued and due (run_after null)", { ...base, status: "queued", run_after: 0 }],
    ["empty JSON columns fall back like json()", { ...base, retry: "", usage: "", outputs: "", error: "" }],
  ];
  test.each(rows)("parses to exactly jobFromRow: %s", (_name, row) => {
    expect(JSON.parse(jobJson(row))).toStrictEqual(JSON.parse(JSON.stringify(jobFromRow(row))));
    expect(JSON.parse(jobJson(row, "no worker is online"))).toStrictEqual(JSON.parse(JSON.stringify(jobFromRow(row, "no worker is online"))));
  });

  test("claimsJson is the ClaimResponse shape: the first claim at the top and every claim in claims", () => {
    const claims: ClaimedRow[] = [
      { row: base, lease: { id: "lease_1", attempt: 2, expires_at: "2026-01-01T00:00:00.000Z" } },
      { row: { ...base, id: "job_2", lease_id: "lease_2" }, lease: { id: "lease_2", attempt: 1, expires_at: "2026-01-01T00:00:00.000Z" } },
    ];
    const parsed = JSON.parse(claimsJson(claims));
    const objects = claims.map((c) => ({ lease: c.lease, job: JSON.parse(JSON.stringify(jobFromRow(c.row))) }));
    expect(parsed).toStrictEqual({ lease: objects[0]!.lease, job: objects[0]!.job, claims: objects });
  });
});
