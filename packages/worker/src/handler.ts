import type { ArtifactKind, DataRef, Gpu, Job, Lease, LogStream, Usage } from "@nexa/core";
import type { ForgeClient } from "@nexa/sdk";
import type { DigestCache } from "./cache.js";

/**
 * What a job handler gets for one attempt. The runtime owns the workspace: everything a handler
 * leaves in {@link HandlerContext.outputsDir} is uploaded and becomes the job's outputs, named by
 * its path relative to that folder.
 */
export interface HandlerContext {
  readonly job: Job;
  readonly lease: Lease;
  /** Attempt number (1-based, increasing across retries). */
  readonly attempt: number;
  /** This attempt's private workspace (removed after the attempt). */
  readonly workdir: string;
  /** Materialised inputs (read-only). */
  readonly inputsDir: string;
  /** Write outputs here. */
  readonly outputsDir: string;
  /** One sub-folder per checkpoint, with an empty `COMPLETE` file written last. */
  readonly checkpointDir: string;
  /** Whether the newest complete checkpoint was restored into {@link checkpointDir}. */
  readonly resumed: boolean;
  /** Aborted on cancel, guardrail, preemption or worker shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Grace period between the abort and a hard stop. */
  readonly graceMs: number;
  /** Ship a log line (batched by the runtime). */
  log(line: string, stream?: LogStream): void;
  /** Ship a metric point (batched by the runtime). */
  metric(name: string, step: number, value: number): void;
  /** Ship every log line and metric point given so far now; resolves once they are with the control plane. */
  flush?(): Promise<void>;
  /**
   * Materialise a blob digest or artifact id at `$inputsDir/<name>` (through the worker's
   * digest cache) and return its absolute path.
   */
  fetchInput(ref: DataRef, name: string): Promise<string>;
  /** Resolve a named secret (provider API keys) on this worker; never logged. */
  secret(name: string): string | undefined;
  /** Add metered usage (tokens, GPU-seconds) to this attempt. */
  addUsage(usage: Partial<Usage>): void;
  /** Extra fields for this attempt's run manifest (e.g. teacher model identity). */
  annotate(fields: Record<string, unknown>): void;
  /** Declare the artifact kind of an output (by its relative path); default `other`. */
  setOutputKind(relativePath: string, kind: ArtifactKind): void;
  /** An authenticated API client (worker scope). */
  readonly api: ForgeClient;
  /**
   * GPUs assigned to this attempt (`job.requirements.gpus` of the worker's GPUs, with their
   * device index); a process handler exports them as `CUDA_VISIBLE_DEVICES`. Absent: none.
   */
  readonly gpus?: readonly Gpu[];
  /** Whether this worker has GPUs at all (so an attempt with none assigned should see none). */
  readonly workerHasGpus?: boolean;
  /** The file a process appends JSON-lines metrics to (`NEXA_METRICS_FILE`). @default `<workdir>/metrics.jsonl` */
  readonly metricsFile?: string;
  /** The worker's digest cache (uploads through it are kept for later jobs on this worker). */
  readonly cache?: DigestCache;
}

/**
 * Why {@link HandlerContext.signal} was aborted (`signal.reason`).
 * - `canceled`: the job was canceled; the attempt ends as canceled.
 * - `preempted`: the worker is stopping; the job is re-queued without spending its failure budget.
 * - `lease_lost`: the control plane gave the job to someone else; nothing of this attempt is reported.
 * - `guardrail_max_runtime_s`: `limits.max_runtime_s` ran out; the attempt fails as a guardrail (outputs kept).
 */
export type AbortReason = "canceled" | "preempted" | "lease_lost" | "guardrail_max_runtime_s";

/** What a handler returns; outputs are taken from {@link HandlerContext.outputsDir}. */
export interface HandlerResult {
  /** Process exit status, for process handlers. */
  exit?: { code: number | null; signal: string | null };
}

/** A job handler: does the real work of one job type for one attempt. */
export type Handler = (ctx: HandlerContext) => Promise<HandlerResult | void>;

/** Options of a {@link JobFailure}. */
export interface JobFailureOptions {
  /** Whether a new attempt may succeed. @default true */
  retryable?: boolean;
  /** Which retry budget it spends. @default "error" */
  kind?: "error" | "preempted" | "canceled" | "guardrail";
  details?: unknown;
  cause?: unknown;
}

/**
 * Thrown by a handler to fail its attempt with a code (`exit_nonzero`, `input_missing`,
 * `guardrail_max_runtime_s`, …). Anything else thrown becomes `handler_error`, retryable.
 *
 * @example
 * throw new JobFailure("input_missing", `input ${name} not found`, { retryable: false });
 */
export class JobFailure extends Error {
  override readonly name = "JobFailure";
  readonly code: string;
  readonly retryable: boolean;
  readonly kind: "error" | "preempted" | "canceled" | "guardrail";
  readonly details: unknown;

  constructor(code: string, message: string, options: JobFailureOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? true;
    this.kind = options.kind ?? "error";
    this.details = options.details;
  }
}
