import { z } from "zod";
import { Digest, Name, Timestamp } from "./common.js";
import { AuditSpec, CommandSpec, DeploySpec, DistillSpec, EvaluateSpec, GenerateSpec, TrainSpec } from "./job-specs/index.js";
import { PreflightReport } from "./preflight.js";
import { Requirements } from "./requirements.js";

/** Every job type Forge runs. */
export const JobType = z.enum(["generate", "audit", "distill", "train", "evaluate", "deploy", "command"]);
export type JobType = z.infer<typeof JobType>;

/** The spec schema of each job type. */
export const JobSpecs = {
  generate: GenerateSpec,
  audit: AuditSpec,
  distill: DistillSpec,
  train: TrainSpec,
  evaluate: EvaluateSpec,
  deploy: DeploySpec,
  command: CommandSpec,
} as const satisfies Record<JobType, z.ZodType>;

/** Job lifecycle. `queued → running → succeeded | failed | canceled`, and back to `queued` on retry. */
export const JobStatus = z.enum(["queued", "running", "succeeded", "failed", "canceled"]);
export type JobStatus = z.infer<typeof JobStatus>;

/** Statuses a job never leaves on its own. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

/** Whether `status` is terminal. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Guardrails on a job's run. */
export const Limits = z.strictObject({
  max_runtime_s: z.number().positive().optional(),
  max_cost_usd: z.number().positive().optional(),
  max_tokens: z.number().int().positive().optional(),
  /** Seconds between SIGTERM and SIGKILL when the job is stopped. @default 30 */
  grace_s: z.number().nonnegative().max(3600).optional(),
});
export type Limits = z.infer<typeof Limits>;

/** Application-failure retry budget. Preemption and lost workers never spend it. */
export const RetryPolicy = z.strictObject({
  /** Total attempts that may fail before the job fails. @default 1 */
  max_attempts: z.number().int().min(1).max(100).default(1),
  /** Base backoff; attempt n waits `backoff_s · 2^(n-1)` with full jitter. @default 5 */
  backoff_s: z.number().nonnegative().max(86_400).default(5),
  /** Cap on one backoff. @default 600 */
  max_backoff_s: z.number().nonnegative().max(86_400).default(600),
});
export type RetryPolicy = z.infer<typeof RetryPolicy>;

const submissionBase = {
  name: z.string().min(1).max(256).optional(),
  /** Higher runs first. @default 0 */
  priority: z.number().int().min(-1000).max(1000).default(0),
  requirements: Requirements.default({}),
  limits: Limits.default({}),
  retry: RetryPolicy.optional(),
  /** Project for usage grouping. @default "default" */
  project: Name.default("default"),
  /** `false` skips the preflight a `train` submission runs before it queues (same as header `X-Nexa-Skip-Preflight: 1`). @default true */
  preflight: z.boolean().optional(),
};

/**
 * A job submission (`POST /v1/jobs`), discriminated by `type`; `spec` is validated by that
 * type's schema.
 *
 * @example
 * JobSubmission.parse({ type: "command", spec: { argv: ["echo", "hi"] } })
 */
export const JobSubmission = z.discriminatedUnion(
  "type",
  JobType.options.map((type) => z.strictObject({ type: z.literal(type), spec: JobSpecs[type], ...submissionBase })) as unknown as [
    z.ZodObject<{ type: z.ZodLiteral<JobType>; spec: z.ZodType } & typeof submissionBase>,
  ],
  { error: (issue) => (issue.code === "invalid_union" ? `type must be one of ${JobType.options.join(", ")}` : undefined) },
);
export type JobSubmission = {
  [T in JobType]: { type: T; spec: z.infer<(typeof JobSpecs)[T]> } & z.infer<z.ZodObject<typeof submissionBase>>;
}[JobType];
/** What a caller may send: defaults not yet applied. */
export type JobSubmissionInput = {
  [T in JobType]: { type: T; spec: z.input<(typeof JobSpecs)[T]> } & z.input<z.ZodObject<typeof submissionBase>>;
}[JobType];

/** One output of a job. */
export const JobOutput = z.object({
  digest: Digest,
  size: z.number().int().nonnegative(),
  media_type: z.string(),
  artifact_id: z.string().optional(),
});
export type JobOutput = z.infer<typeof JobOutput>;

/** Outputs by name (for process jobs: the path relative to `$NEXA_OUTPUTS_DIR`). */
export const JobOutputs = z.record(z.string(), JobOutput);
export type JobOutputs = z.infer<typeof JobOutputs>;

/** Metered usage of one attempt or a whole job. */
export const Usage = z.object({
  wall_s: z.number().nonnegative().default(0),
  cpu_s: z.number().nonnegative().default(0),
  /** GPU-seconds by GPU type. */
  gpu_s: z.record(z.string(), z.number().nonnegative()).default({}),
  tokens_in: z.number().int().nonnegative().default(0),
  tokens_out: z.number().int().nonnegative().default(0),
  cost_usd: z.number().nonnegative().default(0),
});
export type Usage = z.infer<typeof Usage>;

/** Why a job failed. */
export const JobError = z.object({
  code: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
});
export type JobError = z.infer<typeof JobError>;

/** A job as the API returns it. */
export const Job = z.object({
  id: z.string(),
  type: JobType,
  name: z.string().nullable(),
  status: JobStatus,
  spec: z.record(z.string(), z.unknown()),
  priority: z.number().int(),
  requirements: Requirements,
  limits: Limits,
  retry: RetryPolicy,
  project: z.string(),
  attempt: z.number().int().nonnegative(),
  max_attempts: z.number().int().positive(),
  created_at: Timestamp,
  started_at: Timestamp.nullable(),
  finished_at: Timestamp.nullable(),
  /** When a queued job becomes claimable (retry backoff). */
  run_after: Timestamp.nullable(),
  worker_id: z.string().nullable(),
  outputs: JobOutputs.nullable(),
  error: JobError.nullable(),
  usage: Usage,
  cancel_requested: z.boolean(),
  /** For a queued job: why no worker has taken it yet, when known. */
  waiting_reason: z.string().nullable(),
  workflow_run_id: z.string().nullable(),
  /** On the answer to a submission that ran preflight (a `train` job): its checks, warnings included. */
  preflight: PreflightReport.optional(),
});
export type Job = z.infer<typeof Job>;

/** `GET /v1/jobs` query. */
export const ListJobsQuery = z.object({
  status: JobStatus.optional(),
  type: JobType.optional(),
  project: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().optional(),
});
export type ListJobsQuery = z.infer<typeof ListJobsQuery>;

/** `POST /v1/jobs/retry` — retry failed jobs in bulk. */
export const BulkRetryRequest = z.strictObject({
  ids: z.array(z.string()).max(10_000).optional(),
  /** Retry every failed job of this type (with `ids` omitted). */
  type: JobType.optional(),
  /** Retry failed jobs that finished after this instant. */
  since: Timestamp.optional(),
});
export type BulkRetryRequest = z.infer<typeof BulkRetryRequest>;

/** `POST /v1/jobs/batch` — submit many jobs in one request. */
export const BatchSubmitRequest = z.strictObject({ jobs: z.array(z.unknown()).min(1).max(10_000) });
export type BatchSubmitRequest = z.infer<typeof BatchSubmitRequest>;

/** A lease: the fencing token of one attempt. */
export const Lease = z.object({ id: z.string(), attempt: z.number().int().positive(), expires_at: Timestamp });
export type Lease = z.infer<typeof Lease>;

/** `POST /v1/workers/:id/claim` body. */
export const ClaimRequest = z.strictObject({
  wait_s: z.number().min(0).max(60).default(20),
  max_jobs: z.number().int().min(1).max(256).default(1),
});
export type ClaimRequest = z.infer<typeof ClaimRequest>;

/** One claimed job. */
export const Claim = z.object({ lease: Lease, job: Job });
export type Claim = z.infer<typeof Claim>;

/** `POST /v1/workers/:id/claim` answer (200). `lease`/`job` are the first of `claims`. */
export const ClaimResponse = z.object({ lease: Lease, job: Job, claims: z.array(Claim) });
export type ClaimResponse = z.infer<typeof ClaimResponse>;

/** `POST /v1/leases/:id/heartbeat` answer. */
export const HeartbeatResponse = z.object({ expires_at: Timestamp, cancel_requested: z.boolean() });
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

/** Log streams. */
export const LogStream = z.enum(["stdout", "stderr", "system"]);
export type LogStream = z.infer<typeof LogStream>;

/** `POST /v1/leases/:id/logs` body. */
export const LogBatch = z.strictObject({
  lines: z
    .array(z.strictObject({ ts: Timestamp.optional(), stream: LogStream.default("stdout"), line: z.string().max(65_536) }))
    .max(10_000),
});
export type LogBatch = z.infer<typeof LogBatch>;

/** One log line as `GET /v1/jobs/:id/logs` streams it (NDJSON). */
export const LogLine = z.object({ seq: z.number().int(), ts: Timestamp, attempt: z.number().int(), stream: LogStream, line: z.string() });
export type LogLine = z.infer<typeof LogLine>;

/** `POST /v1/leases/:id/metrics` body. */
export const MetricBatch = z.strictObject({
  points: z
    .array(z.strictObject({ name: z.string().min(1).max(256), step: z.number().int().nonnegative(), value: z.number(), ts: Timestamp.optional() }))
    .max(10_000),
});
export type MetricBatch = z.infer<typeof MetricBatch>;

/** `GET /v1/jobs/:id/metrics` answer. */
export const MetricSeries = z.object({
  series: z.record(z.string(), z.array(z.object({ step: z.number().int(), ts: Timestamp, value: z.number() }))),
});
export type MetricSeries = z.infer<typeof MetricSeries>;

/** The run manifest of one attempt: enough to know exactly what ran, where, and on what. */
export const AttemptManifest = z.object({
  attempt: z.number().int(),
  lease_id: z.string().optional(),
  spec: z.unknown().optional(),
  inputs: z.record(z.string(), z.string()).default({}),
  outputs: JobOutputs.default({}),
  worker: z
    .object({
      id: z.string().optional(),
      name: z.string().optional(),
      hostname: z.string().optional(),
      cpu_model: z.string().optional(),
      cpus: z.number().optional(),
      memory_gb: z.number().optional(),
      gpus: z.array(z.unknown()).default([]),
      driver: z.string().optional(),
    })
    .default({ gpus: [] }),
  software: z.record(z.string(), z.string()).default({}),
  timings: z.record(z.string(), z.union([z.string(), z.number()])).default({}),
  exit: z
    .object({ status: z.string(), code: z.number().int().nullable().optional(), signal: z.string().nullable().optional() })
    .optional(),
  usage: Usage.optional(),
  /** Handler-specific facts (process exit, restored checkpoint, teacher model identity). */
  annotations: z.record(z.string(), z.unknown()).optional(),
});
export type AttemptManifest = z.infer<typeof AttemptManifest>;

/** `GET /v1/jobs/:id/manifest` answer: the latest attempt's manifest, plus every attempt. */
export const RunManifest = z.object({
  job_id: z.string(),
  type: JobType,
  status: JobStatus,
  attempts: z.array(AttemptManifest),
  /** The preflight checks recorded when the job was submitted (a `train` job that was not skipped). */
  preflight: PreflightReport.optional(),
});
export type RunManifest = z.infer<typeof RunManifest>;

/** `POST /v1/leases/:id/complete` body. */
export const CompleteRequest = z.strictObject({
  outputs: JobOutputs.default({}),
  usage: Usage.partial().optional(),
  manifest: AttemptManifest.partial().optional(),
});
export type CompleteRequest = z.infer<typeof CompleteRequest>;

/** How an attempt ended badly; decides which retry budget it spends. */
export const FailureKind = z.enum([
  /** The job's own failure: spends the failure budget (`max_attempts`), with backoff. */
  "error",
  /** The worker was stopped or preempted: re-queued without spending the failure budget. */
  "preempted",
  /** The job was stopped because it was canceled. */
  "canceled",
  /** A guardrail limit stopped it: terminal, outputs kept. */
  "guardrail",
]);
export type FailureKind = z.infer<typeof FailureKind>;

/** `POST /v1/leases/:id/fail` body. */
export const FailRequest = z.strictObject({
  error: JobError,
  /** Whether a new attempt may succeed; `false` fails the job at once. @default true */
  retryable: z.boolean().default(true),
  kind: FailureKind.default("error"),
  outputs: JobOutputs.optional(),
  usage: Usage.partial().optional(),
  manifest: AttemptManifest.partial().optional(),
});
export type FailRequest = z.infer<typeof FailRequest>;

/** A job event (SSE `GET /v1/jobs/:id/events`). */
export const JobEvent = z.object({
  seq: z.number().int(),
  job_id: z.string(),
  ts: Timestamp,
  type: z.string(),
  status: JobStatus,
  attempt: z.number().int(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type JobEvent = z.infer<typeof JobEvent>;
