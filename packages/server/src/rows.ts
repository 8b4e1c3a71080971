import type { Artifact, Job, JobEvent, Worker } from "@nexa/core";
import type { ArtifactsTable, JobEventsTable, JobsTable, WorkersTable } from "./store/schema.js";

/** Epoch ms → RFC 3339. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}

/** Parses a JSON column. */
export function json<T>(text: string | null, fallback: T): T {
  if (text === null || text === "") return fallback;
  return JSON.parse(text) as T;
}

/** A job row as the API returns it. */
export function jobFromRow(row: JobsTable, waitingReason: string | null = null): Job {
  return {
    id: row.id,
    type: row.type as Job["type"],
    name: row.name,
    status: row.status as Job["status"],
    spec: json(row.spec, {}),
    priority: row.priority,
    requirements: json(row.requirements, {}),
    limits: json(row.limits, {}),
    retry: json(row.retry, { max_attempts: 1, backoff_s: 5, max_backoff_s: 600 }),
    project: row.project,
    attempt: row.attempt,
    max_attempts: row.max_attempts,
    created_at: iso(row.created_at),
    started_at: isoOrNull(row.started_at),
    finished_at: isoOrNull(row.finished_at),
    run_after: row.status === "queued" && row.run_after > Date.now() ? iso(row.run_after) : null,
    worker_id: row.worker_id,
    outputs: json(row.outputs, null),
    error: json(row.error, null),
    usage: json(row.usage, { wall_s: 0, cpu_s: 0, gpu_s: {}, tokens_in: 0, tokens_out: 0, cost_usd: 0 }),
    cancel_requested: row.cancel_requested === 1,
    waiting_reason: waitingReason,
    workflow_run_id: row.workflow_run_id,
  };
}

/** A JSON column as JSON text: stored text is spliced in as it is (it was written by JSON.stringify). */
function rawJson(text: string | null, fallback: string): string {
  return text === null || text === "" ? fallback : text;
}

function strOrNull(v: string | null): string {
  return v === null ? "null" : JSON.stringify(v);
}

/**
 * {@link jobFromRow} as JSON text, without parsing the JSON columns and serialising them again:
 * the claim path answers many jobs per request, and this is most of its CPU otherwise.
 * `JSON.parse(jobJson(row))` deep-equals `jobFromRow(row)`.
 */
export function jobJson(row: JobsTable, waitingReason: string | null = null): string {
  const runAfter = row.status === "queued" && row.run_after > Date.now() ? JSON.stringify(iso(row.run_after)) : "null";
  return (
    `{"id":${JSON.stringify(row.id)},"type":${JSON.stringify(row.type)},"name":${strOrNull(row.name)},"status":${JSON.stringify(row.status)}` +
    `,"spec":${rawJson(row.spec, "{}")},"priority":${row.priority},"requirements":${rawJson(row.requirements, "{}")},"limits":${rawJson(row.limits, "{}")}` +
    `,"retry":${rawJson(row.retry, '{"max_attempts":1,"backoff_s":5,"max_backoff_s":600}')},"project":${JSON.stringify(row.project)}` +
    `,"attempt":${row.attempt},"max_attempts":${row.max_attempts},"created_at":"${iso(row.created_at)}"` +
    `,"started_at":${row.started_at === null ? "null" : `"${iso(row.started_at)}"`},"finished_at":${row.finished_at === null ? "null" : `"${iso(row.finished_at)}"`}` +
    `,"run_after":${runAfter},"worker_id":${strOrNull(row.worker_id)},"outputs":${rawJson(row.outputs, "null")},"error":${rawJson(row.error, "null")}` +
    `,"usage":${rawJson(row.usage, '{"wall_s":0,"cpu_s":0,"gpu_s":{},"tokens_in":0,"tokens_out":0,"cost_usd":0}')},"cancel_requested":${row.cancel_requested === 1}` +
    `,"waiting_reason":${strOrNull(waitingReason)},"workflow_run_id":${strOrNull(row.workflow_run_id)}}`
  );
}

/** A claimed job row and its lease. */
export interface ClaimedRow {
  row: JobsTable;
  lease: { id: string; attempt: number; expires_at: string };
}

/**
 * The claim answer `{lease, job, claims: [{lease, job}, …]}` as JSON text, each job serialised
 * once (the first appears twice in the answer, from the same text).
 */
export function claimsJson(claims: ClaimedRow[]): string {
  const parts = claims.map((c) => `{"lease":${JSON.stringify(c.lease)},"job":${jobJson(c.row)}}`);
  return `${parts[0]!.slice(0, -1)},"claims":[${parts.join(",")}]}`;
}

/** A worker row as the API returns it. */
export function workerFromRow(row: WorkersTable, running: number): Worker {
  return {
    id: row.id,
    name: row.name,
    capabilities: json(row.capabilities, { cpus: 1, memory_gb: 0, gpus: [], labels: {} }),
    accepts: json(row.accepts, []),
    status: row.status as Worker["status"],
    version: row.version,
    created_at: iso(row.created_at),
    last_seen_at: iso(row.last_seen_at),
    running,
  };
}

/** An artifact row as the API returns it. */
export function artifactFromRow(row: ArtifactsTable): Artifact {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    kind: row.kind as Artifact["kind"],
    digest: row.digest,
    size: Number(row.size),
    media_type: row.media_type,
    metadata: json(row.metadata, {}),
    producer_job_id: row.producer_job_id,
    parents: json(row.parents, []),
    project: row.project,
    created_at: iso(row.created_at),
  };
}

/** A job event row as SSE sends it. */
export function eventFromRow(row: Omit<JobEventsTable, "seq"> & { seq: number }): JobEvent {
  const ev: JobEvent = { seq: row.seq, job_id: row.job_id, ts: iso(row.ts), type: row.type, status: row.status as JobEvent["status"], attempt: row.attempt };
  if (row.data !== null) ev.data = json(row.data, {});
  return ev;
}
