import {
  ApiKey,
  Artifact,
  ClaimResponse,
  Deployment,
  ErrorBody,
  ForgeError,
  HeartbeatResponse,
  Job,
  JobEvent,
  LogLine,
  MetricSeries,
  Org,
  PreflightReport,
  RegisterWorkerResponse,
  RunManifest,
  UsageReport,
  BatchCompleteResponse,
  Worker,
  WorkerHeartbeatResponse,
  WorkflowRun,
  type BatchCompleteItem,
  type ListWorkflowRunsQuery,
  type CompleteRequest,
  type CreateArtifactRequest,
  type CreateKeyRequest,
  type FailRequest,
  type JobSubmissionInput,
  type ListArtifactsQuery,
  type ListDeploymentsQuery,
  type WorkerHeartbeatRequest,
  type ListJobsQuery,
  type LogBatch,
  type MetricBatch,
  type RegisterWorkerRequest,
  type UsageQuery,
} from "@nexa/core";
import { GatewayRequestsReport, GatewayRoute, type GatewayRequestsQuery, type PutGatewayRouteRequest } from "@nexa/core";
import { z } from "zod";

/** Options of a {@link ForgeClient}. */
export interface ForgeClientOptions {
  /** Control plane URL. @default "http://127.0.0.1:8000" */
  url?: string;
  /** API key (`nxk_…`). */
  apiKey?: string;
  /** Per-request timeout in milliseconds (long-polls add their wait). @default 30000 */
  timeoutMs?: number;
  /** `fetch` implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** A page of results. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

const JobPage = z.object({ items: z.array(Job), next_cursor: z.string().nullable() });
const ArtifactPage = z.object({ items: z.array(Artifact), next_cursor: z.string().nullable() });
const Blob = z.object({ digest: z.string(), size: z.number(), created: z.boolean().optional() });

type Query = Record<string, string | number | boolean | undefined>;

/**
 * Typed client for the Nexa Forge HTTP API v1. Every response is parsed with the `@nexa/core`
 * schema for it; every error becomes a {@link ForgeError} with the server's code and details.
 *
 * @example
 * const forge = new ForgeClient({ url: "http://127.0.0.1:8000", apiKey: process.env.NEXA_API_KEY });
 * const job = await forge.submitJob({ type: "command", spec: { argv: ["echo", "hello"] } });
 * const done = await forge.waitForJob(job.id);
 */
export class ForgeClient {
  readonly url: string;
  readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ForgeClientOptions = {}) {
    this.url = (options.url ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** A client identical to this one but authenticating with another key. */
  withKey(apiKey: string): ForgeClient {
    return new ForgeClient({ url: this.url, apiKey, timeoutMs: this.timeoutMs, fetch: this.fetchImpl });
  }

  // ── low level ────────────────────────────────────────────────────────────────────────────

  /** Sends a request and returns the raw response; non-2xx answers throw {@link ForgeError}. */
  async raw(
    method: string,
    path: string,
    init: { body?: unknown; query?: Query; headers?: Record<string, string>; timeoutMs?: number; rawBody?: NonNullable<RequestInit["body"]>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const url = new URL(this.url + path);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { ...init.headers };
    if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;
    let body: NonNullable<RequestInit["body"]> | undefined = init.rawBody;
    if (init.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(init.body);
    }
    const timeout = AbortSignal.timeout(init.timeoutMs ?? this.timeoutMs);
    const signal = init.signal === undefined ? timeout : AbortSignal.any([timeout, init.signal]);
    let res: Response;
    try {
      res = await this.fetchImpl(url, { method, headers, body, signal, ...(init.rawBody !== undefined ? { duplex: "half" } : {}) } as RequestInit);
    } catch (err) {
      throw new ForgeError("unavailable", `cannot reach ${this.url}${path}: ${(err as Error).message}`, { retryable: true, cause: err });
    }
    if (!res.ok) throw await errorFrom(res, method, path);
    return res;
  }

  private async json<T extends z.ZodType>(schema: T, method: string, path: string, init: Parameters<ForgeClient["raw"]>[2] = {}): Promise<z.infer<T>> {
    const res = await this.raw(method, path, init);
    return schema.parse(await res.json());
  }

  // ── orgs and keys ────────────────────────────────────────────────────────────────────────

  /** Instance admin: create an org and its first admin key (shown once). */
  createOrg(name: string): Promise<Org> {
    return this.json(Org, "POST", "/v1/orgs", { body: { name } });
  }
  /** Instance admin: list orgs. */
  async listOrgs(): Promise<Org[]> {
    return (await this.json(z.object({ items: z.array(Org) }), "GET", "/v1/orgs")).items;
  }
  /** Create an API key in the caller's org; the raw key is in the answer only. */
  createKey(body: z.input<typeof import("@nexa/core").CreateKeyRequest> | CreateKeyRequest): Promise<ApiKey> {
    return this.json(ApiKey, "POST", "/v1/keys", { body });
  }
  /** List the org's keys. */
  async listKeys(): Promise<ApiKey[]> {
    return (await this.json(z.object({ items: z.array(ApiKey) }), "GET", "/v1/keys")).items;
  }
  /** Revoke a key. */
  async revokeKey(id: string): Promise<void> {
    await this.raw("DELETE", `/v1/keys/${enc(id)}`);
  }

  // ── jobs ─────────────────────────────────────────────────────────────────────────────────

  /** Submit a job. With `idempotencyKey`, a repeat returns the existing job. */
  submitJob(submission: JobSubmissionInput, options: { idempotencyKey?: string } = {}): Promise<Job> {
    const headers: Record<string, string> = {};
    if (options.idempotencyKey !== undefined) headers["idempotency-key"] = options.idempotencyKey;
    return this.json(Job, "POST", "/v1/jobs", { body: submission, headers });
  }
  /**
   * Preflight a submission without queueing it: for a `train` job whether its dataset, tokenizer
   * and model config load and the model fits a registered worker, with memory, duration and cost.
   *
   * @example
   * const report = await forge.preflight({ type: "train", spec, requirements: { gpus: 1 } });
   * if (!report.ok) console.log(report.checks.filter((c) => c.status === "fail"));
   */
  preflight(submission: JobSubmissionInput): Promise<PreflightReport> {
    return this.json(PreflightReport, "POST", "/v1/preflight", { body: submission });
  }
  /** Submit many jobs in one request (one transaction). */
  async submitJobs(submissions: JobSubmissionInput[]): Promise<Job[]> {
    return (await this.json(z.object({ items: z.array(Job) }), "POST", "/v1/jobs/batch", { body: { jobs: submissions } })).items;
  }
  /** List jobs, newest first. */
  listJobs(query: Partial<ListJobsQuery> = {}): Promise<Page<Job>> {
    return this.json(JobPage, "GET", "/v1/jobs", { query: query as Query });
  }
  /** Read one job. */
  getJob(id: string): Promise<Job> {
    return this.json(Job, "GET", `/v1/jobs/${enc(id)}`);
  }
  /** Cancel a job: queued at once; running by signal, grace, kill. */
  cancelJob(id: string): Promise<Job> {
    return this.json(Job, "POST", `/v1/jobs/${enc(id)}/cancel`, { body: {} });
  }
  /** Retry a failed or canceled job. */
  retryJob(id: string): Promise<Job> {
    return this.json(Job, "POST", `/v1/jobs/${enc(id)}/retry`, { body: {} });
  }
  /** Retry failed jobs in bulk (by ids, or by type / finish time). */
  async retryFailed(body: { ids?: string[]; type?: string; since?: string } = {}): Promise<Job[]> {
    return (await this.json(z.object({ items: z.array(Job) }), "POST", "/v1/jobs/retry", { body })).items;
  }
  /** Logs so far (NDJSON parsed). */
  async getLogs(id: string, options: { after?: number; attempt?: number } = {}): Promise<LogLine[]> {
    const res = await this.raw("GET", `/v1/jobs/${enc(id)}/logs`, { query: { after: options.after, attempt: options.attempt } });
    return parseNdjson(await res.text()).map((l) => LogLine.parse(l));
  }
  /** Follow logs until the job ends, yielding lines as they arrive. */
  async *followLogs(id: string, options: { after?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogLine> {
    const res = await this.raw("GET", `/v1/jobs/${enc(id)}/logs`, {
      query: { follow: 1, after: options.after },
      timeoutMs: 7 * 24 * 3600_000,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for await (const obj of ndjsonStream(res)) yield LogLine.parse(obj);
  }
  /** Job events as they happen (SSE), until the job ends. */
  async *events(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    const res = await this.raw("GET", `/v1/jobs/${enc(id)}/events`, {
      timeoutMs: 7 * 24 * 3600_000,
      headers: { accept: "text/event-stream" },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for await (const data of sseStream(res)) yield JobEvent.parse(JSON.parse(data));
  }
  /** Metric series of a job. */
  getMetrics(id: string): Promise<MetricSeries> {
    return this.json(MetricSeries, "GET", `/v1/jobs/${enc(id)}/metrics`);
  }
  /** The run manifest of a job. */
  getManifest(id: string): Promise<RunManifest> {
    return this.json(RunManifest, "GET", `/v1/jobs/${enc(id)}/manifest`);
  }
  /**
   * Waits until a job is terminal, driven by its event stream (no polling), and returns it.
   * @param timeoutMs give up after this long. @default no limit
   */
  async waitForJob(id: string, timeoutMs?: number): Promise<Job> {
    const ctl = new AbortController();
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => ctl.abort(new Error(`job ${id} did not finish within ${timeoutMs} ms`)), timeoutMs);
    try {
      for await (const ev of this.events(id, { signal: ctl.signal })) {
        if (ev.status === "succeeded" || ev.status === "failed" || ev.status === "canceled") break;
      }
      return await this.getJob(id);
    } catch (err) {
      if (ctl.signal.aborted) throw ctl.signal.reason;
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  // ── workers and leases ───────────────────────────────────────────────────────────────────

  /** Register a worker (a re-register under the same name drops its old leases). */
  registerWorker(body: z.input<typeof import("@nexa/core").RegisterWorkerRequest> | RegisterWorkerRequest): Promise<RegisterWorkerResponse> {
    return this.json(RegisterWorkerResponse, "POST", "/v1/workers", { body });
  }
  /** Deregister: its leases are lost at once and its jobs re-queued. */
  async deregisterWorker(id: string): Promise<void> {
    await this.raw("DELETE", `/v1/workers/${enc(id)}`);
  }
  /** List workers. */
  async listWorkers(): Promise<Worker[]> {
    return (await this.json(z.object({ items: z.array(Worker) }), "GET", "/v1/workers")).items;
  }
  /** Long-poll for work; `null` when nothing came within `wait_s`. */
  async claim(workerId: string, body: { wait_s?: number; max_jobs?: number } = {}, signal?: AbortSignal): Promise<ClaimResponse | null> {
    const waitMs = (body.wait_s ?? 20) * 1000;
    const res = await this.raw("POST", `/v1/workers/${enc(workerId)}/claim`, { body, timeoutMs: this.timeoutMs + waitMs, ...(signal ? { signal } : {}) });
    if (res.status === 204) return null;
    return ClaimResponse.parse(await res.json());
  }
  /** Extend a lease; throws `lease_lost` (409) once it is gone. */
  heartbeat(leaseId: string): Promise<HeartbeatResponse> {
    return this.json(HeartbeatResponse, "POST", `/v1/leases/${enc(leaseId)}/heartbeat`, { body: {} });
  }
  /** Ship log lines for a lease. */
  async sendLogs(leaseId: string, body: z.input<typeof import("@nexa/core").LogBatch> | LogBatch): Promise<void> {
    await this.raw("POST", `/v1/leases/${enc(leaseId)}/logs`, { body });
  }
  /** Ship metric points for a lease. */
  async sendMetrics(leaseId: string, body: MetricBatch): Promise<void> {
    await this.raw("POST", `/v1/leases/${enc(leaseId)}/metrics`, { body });
  }
  /** Report the deployments this worker supervises; answers which of them to stop. */
  workerHeartbeat(workerId: string, body: z.input<typeof import("@nexa/core").WorkerHeartbeatRequest> | WorkerHeartbeatRequest): Promise<WorkerHeartbeatResponse> {
    return this.json(WorkerHeartbeatResponse, "POST", `/v1/workers/${enc(workerId)}/heartbeat`, { body });
  }
  /** Finish an attempt successfully. */
  complete(leaseId: string, body: Partial<CompleteRequest> = {}): Promise<Job> {
    return this.json(Job, "POST", `/v1/leases/${enc(leaseId)}/complete`, { body });
  }
  /** Finish many attempts successfully in one request; each lease gets its own result (a stale one does not fail the rest). */
  completeLeases(leases: z.input<typeof import("@nexa/core").BatchCompleteItem>[] | BatchCompleteItem[]): Promise<BatchCompleteResponse> {
    return this.json(BatchCompleteResponse, "POST", "/v1/leases/complete", { body: { leases } });
  }
  /** Finish an attempt with an error. */
  fail(leaseId: string, body: z.input<typeof import("@nexa/core").FailRequest> | FailRequest): Promise<Job> {
    return this.json(Job, "POST", `/v1/leases/${enc(leaseId)}/fail`, { body });
  }

  // ── blobs and artifacts ──────────────────────────────────────────────────────────────────

  /** Upload bytes; the server verifies `digest` when given. */
  async putBlob(data: Uint8Array | ReadableStream<Uint8Array> | Blob, options: { digest?: string; mediaType?: string } = {}): Promise<{ digest: string; size: number }> {
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (options.digest !== undefined) headers["x-nexa-digest"] = options.digest;
    if (options.mediaType !== undefined) headers["x-nexa-media-type"] = options.mediaType;
    const res = await this.raw("PUT", "/v1/blobs", { rawBody: data as NonNullable<RequestInit["body"]>, headers, timeoutMs: 3600_000 });
    return Blob.parse(await res.json());
  }
  /** Whether a blob exists (and its size). */
  async headBlob(digest: string): Promise<{ size: number } | null> {
    try {
      const res = await this.raw("HEAD", `/v1/blobs/${enc(digest)}`);
      return { size: Number(res.headers.get("content-length") ?? 0) };
    } catch (err) {
      if (err instanceof ForgeError && err.code === "not_found") return null;
      throw err;
    }
  }
  /** Download a blob (optionally a byte range) as a web stream. */
  async getBlob(digest: string, range?: { start: number; end?: number }): Promise<Response> {
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ""}`;
    return this.raw("GET", `/v1/blobs/${enc(digest)}`, { headers, timeoutMs: 3600_000 });
  }
  /** Record a named, versioned artifact. */
  createArtifact(body: z.input<typeof import("@nexa/core").CreateArtifactRequest> | CreateArtifactRequest): Promise<Artifact> {
    return this.json(Artifact, "POST", "/v1/artifacts", { body });
  }
  /** List artifacts. */
  listArtifacts(query: Partial<ListArtifactsQuery> = {}): Promise<Page<Artifact>> {
    return this.json(ArtifactPage, "GET", "/v1/artifacts", { query: query as Query });
  }
  /** Read an artifact. */
  getArtifact(id: string): Promise<Artifact> {
    return this.json(Artifact, "GET", `/v1/artifacts/${enc(id)}`);
  }

  // ── workflows ────────────────────────────────────────────────────────────────────────

  /**
   * Runs a workflow (the file as an object or its YAML text).
   *
   * @example
   * const run = await forge.runWorkflow({ workflow: readFileSync("pipelines/distill.yaml", "utf8"), inputs: { n: 3 } });
   */
  runWorkflow(body: { workflow: string | Record<string, unknown>; inputs?: Record<string, unknown>; resume_from?: string; no_cache?: boolean }): Promise<WorkflowRun> {
    return this.json(WorkflowRun, "POST", "/v1/workflows", { body });
  }
  /** Reads a workflow run with its steps. */
  getWorkflowRun(id: string): Promise<WorkflowRun> {
    return this.json(WorkflowRun, "GET", `/v1/workflows/${enc(id)}`);
  }
  /** Lists workflow runs, newest first. */
  listWorkflowRuns(query: Partial<ListWorkflowRunsQuery> = {}): Promise<Page<WorkflowRun>> {
    return this.json(z.object({ items: z.array(WorkflowRun), next_cursor: z.string().nullable() }), "GET", "/v1/workflows", { query: query as Query });
  }
  /** Cancels a run. */
  cancelWorkflowRun(id: string): Promise<WorkflowRun> {
    return this.json(WorkflowRun, "POST", `/v1/workflows/${enc(id)}/cancel`, { body: {} });
  }
  /** Starts a new run reusing every succeeded step of `id`. */
  resumeWorkflowRun(id: string, options: { no_cache?: boolean } = {}): Promise<WorkflowRun> {
    return this.json(WorkflowRun, "POST", `/v1/workflows/${enc(id)}/resume`, { body: options });
  }
  /**
   * Waits until a run ends, calling `onUpdate` whenever a step changes.
   * @param pollMs how often to read the run. @default 250
   */
  async waitForWorkflow(id: string, options: { timeoutMs?: number; pollMs?: number; onUpdate?: (run: WorkflowRun) => void } = {}): Promise<WorkflowRun> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let last = "";
    for (;;) {
      const run = await this.getWorkflowRun(id);
      const sig = JSON.stringify([run.status, Object.values(run.steps).map((s) => [s.status, s.matrix?.map((m) => m.status)])]);
      if (sig !== last) {
        last = sig;
        options.onUpdate?.(run);
      }
      if (run.status === "succeeded" || run.status === "failed" || run.status === "canceled") {
        const unfinished = Object.values(run.steps).some((s) => s.status === "queued" || s.status === "running");
        if (!unfinished) return run;
      }
      if (Date.now() > deadline) throw new ForgeError("unavailable", `workflow run ${id} did not finish within ${options.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
    }
  }

  // ── deployments ──────────────────────────────────────────────────────────────────────────

  /**
   * Served models started by `deploy` jobs, newest first.
   *
   * @example
   * const live = await client.listDeployments({ status: "healthy", name: "tiny-gpt" });
   */
  async listDeployments(query: Partial<ListDeploymentsQuery> = {}): Promise<Deployment[]> {
    return (await this.json(z.object({ items: z.array(Deployment) }), "GET", "/v1/deployments", { query: query as Query })).items;
  }
  /** Read a deployment (404 for an unknown id or another org's). */
  getDeployment(id: string): Promise<Deployment> {
    return this.json(Deployment, "GET", `/v1/deployments/${enc(id)}`);
  }
  /** Stop a deployment: `stopping` until its worker has stopped the server, or `stopped` at once when that worker is gone. */
  stopDeployment(id: string): Promise<Deployment> {
    return this.json(Deployment, "DELETE", `/v1/deployments/${enc(id)}`);
  }

  // ── gateway ──────────────────────────────────────────────────────────────────────────────

  /**
   * Create or replace the gateway route `name`: weighted targets (deployments by name, or external
   * providers whose API key is named by an environment variable of the control plane).
   *
   * @example
   * await forge.putGatewayRoute("chat", { targets: [{ deployment: "tiny-a", weight: 90 }, { deployment: "tiny-b", weight: 10 }] });
   */
  putGatewayRoute(name: string, body: z.input<typeof import("@nexa/core").PutGatewayRouteRequest> | PutGatewayRouteRequest): Promise<GatewayRoute> {
    return this.json(GatewayRoute, "PUT", `/v1/gateway/routes/${enc(name)}`, { body });
  }
  /** The org's gateway routes. */
  async listGatewayRoutes(): Promise<GatewayRoute[]> {
    return (await this.json(z.object({ items: z.array(GatewayRoute) }), "GET", "/v1/gateway/routes")).items;
  }
  /** Delete a gateway route (404 when there is none of that name). */
  async deleteGatewayRoute(name: string): Promise<void> {
    await this.raw("DELETE", `/v1/gateway/routes/${enc(name)}`);
  }
  /** Recorded gateway requests: a summary per route and variant (default), or the records (`view: "requests"`). */
  gatewayRequests(query: Partial<GatewayRequestsQuery> = {}): Promise<GatewayRequestsReport> {
    return this.json(GatewayRequestsReport, "GET", "/v1/gateway/requests", { query: query as Query });
  }

  // ── usage ────────────────────────────────────────────────────────────────────────────────

  /** Metered usage and cost. */
  getUsage(query: Partial<UsageQuery> = {}): Promise<UsageReport> {
    return this.json(UsageReport, "GET", "/v1/usage", { query: query as Query });
  }

  /** `GET /healthz`. */
  async health(): Promise<boolean> {
    try {
      await this.raw("GET", "/healthz", { timeoutMs: 2000 });
      return true;
    } catch {
      return false;
    }
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

async function errorFrom(res: Response, method: string, path: string): Promise<ForgeError> {
  const text = await res.text().catch(() => "");
  let body: ErrorBody | undefined;
  try {
    body = ErrorBody.parse(JSON.parse(text));
  } catch {
    body = undefined;
  }
  const retryAfter = Number(res.headers.get("retry-after"));
  const opts = {
    details: body?.error.details,
    retryable: res.status === 429 || res.status >= 500,
    ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterS: retryAfter } : {}),
  };
  if (body) return new ForgeError(body.error.code, body.error.message, opts);
  const code = res.status === 404 ? "not_found" : res.status === 401 ? "unauthenticated" : res.status >= 500 ? "unavailable" : "invalid_request";
  return new ForgeError(code, `${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`, opts);
}

/** Parses NDJSON text into objects (blank lines skipped). */
export function parseNdjson(text: string): unknown[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as unknown);
}

async function* lines(res: Response): AsyncGenerator<string> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (buf !== "") yield buf;
}

async function* ndjsonStream(res: Response): AsyncGenerator<unknown> {
  for await (const line of lines(res)) if (line.trim() !== "") yield JSON.parse(line);
}

/** Yields the `data` of each SSE event. */
async function* sseStream(res: Response): AsyncGenerator<string> {
  let data: string[] = [];
  for await (const raw of lines(res)) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") {
      if (data.length > 0) yield data.join("\n");
      data = [];
    } else if (line.startsWith("data:")) {
      data.push(line.slice(5).trimStart());
    }
  }
  if (data.length > 0) yield data.join("\n");
}
