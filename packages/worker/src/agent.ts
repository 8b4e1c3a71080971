import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { extname, join, relative, sep } from "node:path";
import {
  ForgeError,
  InputName,
  JobType,
  addUsage,
  zeroUsage,
  type ArtifactKind,
  type AttemptManifest,
  type Claim,
  type FailRequest,
  type Gpu,
  type JobOutputs,
  type RegisterWorkerResponse,
  type Usage,
} from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { DigestCache } from "./cache.js";
import { restoreLatestCheckpoint } from "./checkpoints.js";
import { discoverGpus, type DiscoverGpusOptions, type DiscoveredGpu, type GpuOption } from "./gpu.js";
import { JobFailure, type HandlerContext, type HandlerResult } from "./handler.js";
import { builtinHandlers, type HandlerRegistry } from "./handlers/index.js";
import { LeaseChannel } from "./lease-channel.js";
import { hardware, probePython, softwareVersions, workerVersion, type Hardware } from "./system-info.js";
import { claimWorkdir } from "./workdir.js";
import { deployments as processDeployments, type DeploymentSupervisor } from "./deployments.js";
import { createDeployHandler } from "./handlers/deploy.js";

/** Options of a {@link WorkerAgent}. */
export interface WorkerAgentOptions {
  /** Control plane URL. @default "http://127.0.0.1:8000" */
  url?: string;
  /** API key with the `worker` scope (or `admin`). */
  apiKey?: string;
  /** Worker name; registering again under the same name drops the old registration's leases. @default the hostname */
  name?: string;
  /** Labels jobs can require (`requirements.labels`). @default {} */
  labels?: Record<string, string>;
  /** `"auto"`: discover with `nvidia-smi`; a number: trust it. @default "auto" */
  gpus?: GpuOption;
  /** Job types to run; must be types this worker has handlers for. @default every type in {@link handlers} */
  accepts?: JobType[];
  /** Attempts run at once. @default 1 */
  concurrency?: number;
  /** Workspaces and the digest cache live here; one worker per workdir. @default `$NEXA_HOME/work` (NEXA_HOME default ~/.nexa) */
  workdir?: string;
  /** Time between SIGTERM and SIGKILL (and for in-process handlers to notice a stop), unless the job's `limits.grace_s` says otherwise. @default 30000 */
  graceMs?: number;
  /** Heartbeat period; the register answer's `heartbeat_interval_s` otherwise. */
  heartbeatIntervalMs?: number;
  /** Long-poll duration of one claim. @default 20 */
  claimWaitS?: number;
  /** Handlers by job type. @default {@link builtinHandlers} */
  handlers?: HandlerRegistry;
  /** Named secrets for {@link HandlerContext.secret}; the environment is consulted after. @default {} */
  secrets?: Record<string, string>;
  /** Bound on the digest cache (`<workdir>/cache`), least recently used blobs evicted first. @default no limit */
  cacheMaxBytes?: number;
  /** Keep attempt workspaces after they end (debugging). @default false */
  keepWorkspaces?: boolean;
  /** Where the agent narrates what it does (claims, outcomes, errors). @default silent */
  log?: (line: string) => void;
  /** Stop (as preemption) on SIGTERM and SIGINT. @default false */
  stopOnSignals?: boolean;
  /** How GPUs are discovered (tests point `env.PATH` at a stand-in `nvidia-smi`). */
  discoverGpus?: DiscoverGpusOptions;
  /**
   * Where `deploy` jobs' servers live: reported to the control plane every heartbeat interval,
   * stopped when it says so and when the agent stops. With the default handlers, the `deploy`
   * handler uses it too. @default the process-wide supervisor
   */
  deployments?: DeploymentSupervisor;
}

/** {@link WorkerAgentOptions} with defaults applied. */
export interface ResolvedWorkerAgentOptions {
  url: string;
  apiKey: string | undefined;
  name: string;
  labels: Record<string, string>;
  gpus: GpuOption;
  accepts: JobType[];
  concurrency: number;
  workdir: string;
  graceMs: number;
  heartbeatIntervalMs: number | undefined;
  claimWaitS: number;
  handlers: HandlerRegistry;
  secrets: Record<string, string>;
  keepWorkspaces: boolean;
  cacheMaxBytes: number | undefined;
  log: (line: string) => void;
  stopOnSignals: boolean;
  discoverGpus: DiscoverGpusOptions;
  deployments: DeploymentSupervisor;
}

/** Extra time, after the grace period, for a stopped handler to upload its final checkpoint. */
const STOP_SLACK_MS = 10_000;

/** Applies defaults and checks options; throws a message naming the bad option. */
export function resolveWorkerAgentOptions(options: WorkerAgentOptions): ResolvedWorkerAgentOptions {
  const handlers = options.handlers ?? (options.deployments !== undefined ? { ...builtinHandlers, deploy: createDeployHandler(options.deployments) } : builtinHandlers);
  const available = JobType.options.filter((t) => handlers[t] !== undefined);
  let accepts = available;
  if (options.accepts !== undefined && options.accepts.length > 0) {
    const missing = options.accepts.filter((t) => handlers[t] === undefined);
    if (missing.length > 0) throw new Error(`accepts: this worker has no handler for ${missing.join(", ")} (it has: ${available.join(", ")})`);
    accepts = [...new Set(options.accepts)];
  }
  if (accepts.length === 0) throw new Error("this worker has no handlers to run");
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new Error(`concurrency must be an integer 1–256, got ${concurrency}`);
  const home = process.env.NEXA_HOME ?? join(homedir(), ".nexa");
  return {
    url: options.url ?? "http://127.0.0.1:8000",
    apiKey: options.apiKey,
    name: options.name ?? hardware().hostname,
    labels: options.labels ?? {},
    gpus: options.gpus ?? "auto",
    accepts,
    concurrency,
    workdir: options.workdir ?? join(home, "work"),
    graceMs: options.graceMs ?? 30_000,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    claimWaitS: options.claimWaitS ?? 20,
    handlers,
    secrets: options.secrets ?? {},
    keepWorkspaces: options.keepWorkspaces ?? false,
    cacheMaxBytes: options.cacheMaxBytes,
    log: options.log ?? (() => undefined),
    stopOnSignals: options.stopOnSignals ?? false,
    discoverGpus: options.discoverGpus ?? {},
    deployments: options.deployments ?? processDeployments,
  };
}

/** What an attempt gathered for its run manifest. */
interface ManifestParts {
  inputs: Record<string, string>;
  usage: Usage;
  gpus: DiscoveredGpu[];
  timings: Record<string, string | number>;
  annotations: Record<string, unknown>;
  /** succeeded, failed, canceled, preempted or guardrail. */
  status: string;
  exit: { code: number | null; signal: string | null } | undefined;
  outputs?: JobOutputs;
}

interface RunningAttempt {
  claim: Claim;
  controller: AbortController;
  settled: Promise<void>;
}

type Outcome =
  | { ok: true; result: HandlerResult | void }
  | { ok: false; error: unknown }
  | { ok: false; error: JobFailure; timedOut: true };

/**
 * The worker agent: registers with the control plane, long-polls for jobs up to its free slots,
 * runs each attempt in its own workspace under the handler for its type, keeps the lease alive,
 * ships logs and metrics, uploads outputs as artifacts, and completes or fails the attempt.
 *
 * `stop()` (and SIGTERM with `stopOnSignals`) is preemption: claiming stops, running handlers
 * are aborted with reason `"preempted"` (processes get SIGTERM, the grace period, SIGKILL), the
 * attempts are reported with `kind: "preempted"` so their jobs are re-queued without spending
 * the failure budget, and the worker deregisters.
 *
 * A worker killed outright (SIGKILL, OOM) cannot stop its jobs' processes, which run detached in
 * their own process groups; the control plane re-queues the jobs when their leases expire, and
 * the next agent to take the same workdir kills the leftover groups (see `claimWorkdir`).
 *
 * @example
 * const agent = new WorkerAgent({ url, apiKey, concurrency: 2, workdir: "/var/lib/nexa" });
 * await agent.start();
 * process.once("SIGTERM", () => void agent.stop().catch(console.error));
 * await agent.done;
 */
export class WorkerAgent {
  readonly options: ResolvedWorkerAgentOptions;
  readonly api: ForgeClient;
  readonly cache: DigestCache;
  private registration: RegisterWorkerResponse | null = null;
  private gpus: DiscoveredGpu[] = [];
  private readonly freeGpus = new Set<number>();
  private gpuWaiters: (() => void)[] = [];
  private hw: Hardware = hardware();
  private readonly attempts = new Map<string, RunningAttempt>();
  private slotWaiter: (() => void) | null = null;
  private readonly claimAbort = new AbortController();
  private stopping = false;
  private stopPromise: Promise<void> | null = null;
  private loop: Promise<void> = Promise.resolve();
  private releaseWorkdir: (() => Promise<void>) | null = null;
  private deploymentBeat: NodeJS.Timeout | undefined;
  private resolveDone!: () => void;
  /** Resolves once the agent has stopped and deregistered. */
  readonly done: Promise<void> = new Promise((r) => (this.resolveDone = r));
  private readonly onSignal = () => {
    this.options.log("signal received: stopping (running attempts are reported as preempted)");
    this.stop().catch((err: unknown) => this.options.log(`stop failed: ${(err as Error).message}`));
  };

  constructor(options: WorkerAgentOptions = {}) {
    this.options = resolveWorkerAgentOptions(options);
    this.api = new ForgeClient({ url: this.options.url, ...(this.options.apiKey !== undefined ? { apiKey: this.options.apiKey } : {}) });
    this.cache = new DigestCache(join(this.options.workdir, "cache"), this.api, {
      ...(this.options.cacheMaxBytes !== undefined ? { maxBytes: this.options.cacheMaxBytes } : {}),
    });
  }

  /** The worker id, once registered. */
  get id(): string | undefined {
    return this.registration?.id;
  }

  /** Attempts running now. */
  get running(): number {
    return this.attempts.size;
  }

  /** The GPUs this worker offers. */
  get gpuList(): readonly DiscoveredGpu[] {
    return this.gpus;
  }

  /** Registers and starts the claim loop; resolves with the registration. */
  async start(): Promise<RegisterWorkerResponse> {
    if (this.registration) return this.registration;
    const { log } = this.options;
    this.releaseWorkdir = await claimWorkdir(this.options.workdir, log);
    this.gpus = await discoverGpus(this.options.gpus, this.options.discoverGpus);
    for (const g of this.gpus) this.freeGpus.add(g.index);
    void probePython().catch(() => undefined);
    try {
      await this.registerPatiently();
    } catch (err) {
      await this.releaseWorkdir();
      throw err;
    }
    if (this.options.stopOnSignals) {
      process.on("SIGTERM", this.onSignal);
      process.on("SIGINT", this.onSignal);
    }
    this.loop = this.claimLoop().catch((err: unknown) => log(`claim loop ended: ${(err as Error).message}`));
    this.startDeploymentHeartbeat();
    if (!this.registration) throw new Error("not registered");
    return this.registration;
  }

  /**
   * Registers, waiting out a control plane that is not up yet (workers often start first):
   * transient failures are retried with capped backoff; a refused key or bad request fails at once.
   */
  private async registerPatiently(): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        await this.register();
        return;
      } catch (err) {
        if (!(err instanceof ForgeError && err.retryable) || this.stopping) throw err;
        const delay = err.retryAfterS !== undefined ? err.retryAfterS * 1000 : Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
        this.options.log(`cannot register yet (${err.message}); retrying in ${Math.round(delay / 100) / 10} s`);
        await abortableDelay(delay, this.claimAbort.signal);
        if (this.stopping) throw new Error("stopped before registering");
      }
    }
  }

  private async register(): Promise<void> {
    const caps = {
      cpus: this.hw.cpus,
      memory_gb: this.hw.memory_gb,
      gpus: this.gpus.map((g) => ({ name: g.name, memory_gb: g.memory_gb, index: g.index, ...(g.driver !== undefined ? { driver: g.driver } : {}) })),
      labels: this.options.labels,
    };
    this.registration = await this.api.registerWorker({
      name: this.options.name,
      capabilities: caps,
      accepts: this.options.accepts,
      version: await workerVersion(),
    });
    const r = this.registration;
    this.options.log(
      `registered ${r.name} as ${r.id} at ${this.options.url}: accepts ${this.options.accepts.join(",")}; ` +
        `${caps.cpus} CPUs, ${caps.memory_gb} GB, ${this.gpus.length === 0 ? "no GPUs" : this.gpus.map((g) => g.name).join(", ")}; ` +
        `concurrency ${this.options.concurrency}; workdir ${this.options.workdir}`,
    );
  }

  /**
   * Preemption: stop claiming, abort running attempts with reason `"preempted"`, wait out the
   * grace period, report them preempted, deregister. Idempotent.
   */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopping = true;
      this.claimAbort.abort("stopping");
      this.slotWaiter?.();
      for (const w of this.gpuWaiters) w();
      for (const a of this.attempts.values()) if (!a.controller.signal.aborted) a.controller.abort("preempted");
      await Promise.all([...this.attempts.values()].map((a) => a.settled));
      await this.loop;
      clearInterval(this.deploymentBeat);
      // Served models started by deploy jobs live with the worker process; they end with it.
      await this.options.deployments.stopAll().catch((err: unknown) => this.options.log(`stopping deployments failed: ${(err as Error).message}`));
      if (this.registration) {
        try {
          await this.api.deregisterWorker(this.registration.id);
          this.options.log(`deregistered ${this.registration.id}`);
        } catch (err) {
          this.options.log(`deregister failed: ${(err as Error).message}`);
        }
      }
      if (this.options.stopOnSignals) {
        process.off("SIGTERM", this.onSignal);
        process.off("SIGINT", this.onSignal);
      }
      await this.releaseWorkdir?.();
      this.resolveDone();
    })();
    return this.stopPromise;
  }

  // ── deployments ──────────────────────────────────────────────────────────────────────────

  /**
   * While the supervisor holds deployments, reports them (`POST /v1/workers/:id/heartbeat`)
   * every heartbeat interval and stops the ones the control plane lists in `stop`. Stopped and
   * failed ones are forgotten once reported.
   */
  private startDeploymentHeartbeat(): void {
    const everyMs = this.options.heartbeatIntervalMs ?? (this.registration?.heartbeat_interval_s ?? 5) * 1000;
    let inflight = false;
    const beat = async () => {
      const workerId = this.registration?.id;
      const held = this.options.deployments.list();
      if (inflight || this.stopping || workerId === undefined || held.length === 0) return;
      inflight = true;
      try {
        const res = await this.api.workerHeartbeat(workerId, {
          deployments: held.map((d) => ({ id: d.deploymentId, state: d.state, url: d.url, restarts: d.restarts })),
        });
        for (const d of held) if (d.state === "stopped" || d.state === "failed") this.options.deployments.forget(d.id);
        const stop = new Set(res.stop);
        for (const d of held) {
          if (!stop.has(d.deploymentId)) continue;
          this.options.log(`deployment ${d.deploymentId} (${d.model}): the control plane asked to stop it`);
          await this.options.deployments.stop(d.id);
        }
      } catch (err) {
        // Transient (the next beat tries again), or a worker the control plane forgot (the claim loop registers again).
        this.options.log(`deployment heartbeat failed: ${(err as Error).message}`);
      } finally {
        inflight = false;
      }
    };
    this.deploymentBeat = setInterval(() => void beat(), everyMs);
    this.deploymentBeat.unref();
  }

  // ── claim loop ───────────────────────────────────────────────────────────────────────────

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const free = this.options.concurrency - this.attempts.size;
      if (free <= 0) {
        // Woken by an attempt settling (or stop); no polling.
        await new Promise<void>((resolve) => (this.slotWaiter = resolve));
        this.slotWaiter = null;
        continue;
      }
      const workerId = this.registration?.id;
      if (workerId === undefined) return;
      let res;
      try {
        res = await this.api.claim(workerId, { wait_s: this.options.claimWaitS, max_jobs: free }, this.claimAbort.signal);
        failures = 0;
      } catch (err) {
        if (this.stopping) return;
        failures++;
        // not_found: the control plane forgot this worker; conflict: it marked it offline (e.g. after missed heartbeats).
        if (err instanceof ForgeError && (err.code === "not_found" || err.code === "conflict")) {
          this.options.log("the control plane no longer knows this worker: registering again");
          await this.register().catch((e: unknown) => this.options.log(`register failed: ${(e as Error).message}`));
        } else {
          this.options.log(`claim failed: ${(err as Error).message}`);
        }
        // An unreachable or failing control plane: back off (capped) instead of spinning. The
        // long-poll is the wait on the normal path; this delay is only for the error path.
        const delay = err instanceof ForgeError && err.retryAfterS !== undefined ? err.retryAfterS * 1000 : Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
        await abortableDelay(delay, this.claimAbort.signal);
        continue;
      }
      if (res === null) continue;
      for (const claim of res.claims.length > 0 ? res.claims : [{ lease: res.lease, job: res.job }]) this.launch(claim);
    }
  }

  private launch(claim: Claim): void {
    const controller = new AbortController();
    const entry: RunningAttempt = { claim, controller, settled: Promise.resolve() };
    this.attempts.set(claim.lease.id, entry);
    if (this.stopping) controller.abort("preempted");
    entry.settled = this.runAttempt(claim, controller)
      .catch((err: unknown) => this.options.log(`attempt ${claim.job.id}#${claim.lease.attempt} crashed: ${(err as Error).stack ?? String(err)}`))
      .finally(() => {
        this.attempts.delete(claim.lease.id);
        this.slotWaiter?.();
      });
  }

  // ── GPUs ─────────────────────────────────────────────────────────────────────────────────

  private gpusWanted(claim: Claim): number {
    const req = claim.job.requirements;
    return req.gpus ?? (req.gpu_type !== undefined || req.gpu_memory_gb !== undefined ? 1 : 0);
  }

  /** Takes `n` free GPUs matching the job's GPU requirements, waiting for running attempts to free some. */
  private async acquireGpus(claim: Claim, signal: AbortSignal): Promise<DiscoveredGpu[]> {
    const n = this.gpusWanted(claim);
    if (n === 0) return [];
    const req = claim.job.requirements;
    const fits = (g: DiscoveredGpu) =>
      (req.gpu_type === undefined || g.name.toLowerCase().includes(req.gpu_type.toLowerCase())) &&
      (req.gpu_memory_gb === undefined || g.memory_gb >= req.gpu_memory_gb);
    if (this.gpus.filter(fits).length < n) {
      throw new JobFailure("gpus_unavailable", `needs ${n} GPU(s) this worker does not have`, { retryable: true });
    }
    for (;;) {
      if (signal.aborted) throw new JobFailure(String(signal.reason), `stopped before start: ${String(signal.reason)}`);
      const pick = this.gpus.filter((g) => this.freeGpus.has(g.index) && fits(g)).slice(0, n);
      if (pick.length === n) {
        for (const g of pick) this.freeGpus.delete(g.index);
        return pick;
      }
      // Woken when an attempt releases GPUs, or on abort.
      await new Promise<void>((resolve) => {
        this.gpuWaiters.push(resolve);
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    }
  }

  private releaseGpus(gpus: DiscoveredGpu[]): void {
    if (gpus.length === 0) return;
    for (const g of gpus) this.freeGpus.add(g.index);
    const waiters = this.gpuWaiters;
    this.gpuWaiters = [];
    for (const w of waiters) w();
  }

  // ── one attempt ──────────────────────────────────────────────────────────────────────────

  private async runAttempt(claim: Claim, controller: AbortController): Promise<void> {
    const { job, lease } = claim;
    const { log: say } = this.options;
    const tag = `${job.id}#${lease.attempt}`;
    const claimedAt = new Date();
    say(`claimed ${job.type} job ${tag}${job.name ? ` (${job.name})` : ""} under lease ${lease.id}`);
    const ws = join(this.options.workdir, `${job.id}-${lease.attempt}`);
    const inputsDir = join(ws, "inputs");
    const outputsDir = join(ws, "outputs");
    const checkpointDir = join(ws, "checkpoints");
    const signal = controller.signal;
    if (job.cancel_requested && !signal.aborted) controller.abort("canceled");
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      say(`lease of ${tag} lost: abandoning the attempt`);
      if (!signal.aborted) controller.abort("lease_lost");
    };
    const channel = new LeaseChannel(this.api, lease.id, onLost);
    const heartbeat = this.startHeartbeat(lease.id, controller, onLost, tag);

    const inputs: Record<string, string> = {};
    const parents = new Set<string>();
    const outputKinds = new Map<string, ArtifactKind>();
    const annotations: Record<string, unknown> = {};
    let usage: Usage = zeroUsage();
    const graceMs = job.limits.grace_s !== undefined ? job.limits.grace_s * 1000 : this.options.graceMs;
    let gpus: DiscoveredGpu[] = [];
    const timings: Record<string, string | number> = { claimed_at: claimedAt.toISOString() };
    let outcome: Outcome;
    let resumed = false;
    let runStart = Date.now();
    let cpuStart: NodeJS.CpuUsage | undefined;
    let cpuReported = false;

    try {
      await mkdir(inputsDir, { recursive: true });
      await mkdir(outputsDir, { recursive: true });
      await mkdir(checkpointDir, { recursive: true });
      try {
        const art = await restoreLatestCheckpoint({ api: this.api, cache: this.cache, jobId: job.id, dir: checkpointDir, log: (l) => channel.log(l, "system") });
        resumed = art !== null;
        if (art) annotations.restored_checkpoint = { artifact_id: art.id, version: art.version, digest: art.digest, metadata: art.metadata };
      } catch (err) {
        channel.log(`checkpoint restore skipped: ${(err as Error).message}`, "system");
      }
      gpus = await this.acquireGpus(claim, signal);
      const handler = this.options.handlers[job.type];
      if (!handler) throw new JobFailure("no_handler", `this worker has no ${job.type} handler`, { retryable: false });

      const ctx: HandlerContext = {
        job,
        lease,
        attempt: lease.attempt,
        workdir: ws,
        inputsDir,
        outputsDir,
        checkpointDir,
        resumed,
        signal,
        graceMs,
        log: (line, stream) => channel.log(line, stream ?? "stdout"),
        metric: (name, step, value) => channel.metric(name, step, value),
        flush: () => channel.flush(),
        fetchInput: async (ref, name) => {
          const ok = InputName.safeParse(name);
          if (!ok.success) throw new JobFailure("invalid_input_name", `input name ${JSON.stringify(name)}: ${ok.error.issues[0]?.message ?? "invalid"}`, { retryable: false });
          const dest = join(inputsDir, name);
          const resolved = await this.cache.materialize(ref, dest);
          inputs[name] = resolved.digest;
          if (resolved.artifactId !== undefined) parents.add(resolved.artifactId);
          return dest;
        },
        secret: (name) => this.options.secrets[name] ?? process.env[name],
        addUsage: (u) => {
          if (u.cpu_s !== undefined) cpuReported = true;
          usage = addUsage(usage, u);
        },
        annotate: (fields) => Object.assign(annotations, fields),
        setOutputKind: (rel, kind) => outputKinds.set(rel.split(sep).join("/"), kind),
        api: this.api,
        gpus,
        workerHasGpus: this.gpus.length > 0,
        metricsFile: join(ws, "metrics.jsonl"),
        cache: this.cache,
      };
      timings.started_at = new Date().toISOString();
      runStart = Date.now();
      cpuStart = this.options.concurrency === 1 ? process.cpuUsage() : undefined;
      if (resumed) channel.log("resuming from the restored checkpoint (NEXA_RESUME=1)", "system");
      // The runtime guardrail for every handler: the attempt is stopped like a cancel, and
      // reported as a terminal guardrail failure (outputs kept). The command handler enforces the
      // same limit on its process; whichever fires first wins, with the same result.
      const maxRuntimeS = job.limits.max_runtime_s;
      const guard =
        maxRuntimeS === undefined
          ? undefined
          : setTimeout(() => {
              if (signal.aborted) return;
              channel.log(`max_runtime_s ${maxRuntimeS} reached: stopping`, "system");
              controller.abort("guardrail_max_runtime_s");
            }, maxRuntimeS * 1000);
      try {
        outcome = await this.runHandler(() => handler(ctx), signal, graceMs);
      } finally {
        if (guard) clearTimeout(guard);
      }
    } catch (err) {
      outcome = { ok: false, error: err };
    }
    const runEnd = Date.now();
    timings.finished_at = new Date(runEnd).toISOString();
    timings.run_s = (runEnd - runStart) / 1000;
    this.releaseGpus(gpus);
    if (usage.wall_s === 0) usage.wall_s = (runEnd - runStart) / 1000;
    // An in-process handler reports no CPU time of its own. With one slot the worker process's
    // CPU over the attempt is attributable to it (heartbeats and log shipping included); with
    // more slots it is not, and nothing is claimed.
    if (!cpuReported && cpuStart !== undefined) {
      const d = process.cpuUsage(cpuStart);
      usage.cpu_s = (d.user + d.system) / 1e6;
    }

    try {
      if (lost || signal.reason === "lease_lost") {
        heartbeat.stop();
        await channel.close();
        return;
      }
      const failure = this.failureOf(outcome, signal);
      let outputs: JobOutputs = {};
      const keepOutputs = failure === null || failure.kind === "guardrail";
      if (keepOutputs) {
        const t0 = Date.now();
        try {
          outputs = await this.uploadOutputs(claim, outputsDir, outputKinds, [...parents]);
        } catch (err) {
          if (failure === null) {
            await this.finish(claim, ws, channel, heartbeat, {
              kind: "fail",
              body: {
                error: { code: "output_upload_failed", message: `uploading outputs failed: ${(err as Error).message}` },
                retryable: true,
                kind: "error",
              },
            }, { inputs, usage, gpus, timings, annotations, status: "failed", exit: undefined });
            return;
          }
        }
        timings.upload_s = (Date.now() - t0) / 1000;
      }
      const exit = failure === null ? exitOf((outcome as { result?: HandlerResult | void }).result) : exitOfDetails(failure.details);
      if (failure === null) {
        await this.finish(claim, ws, channel, heartbeat, { kind: "complete", outputs }, { inputs, usage, gpus, timings, annotations, status: "succeeded", exit, outputs });
        say(`job ${tag} succeeded (${Object.keys(outputs).length} outputs)`);
      } else {
        const body: FailRequest = {
          error: { code: failure.code, message: failure.message, ...(failure.details !== undefined ? { details: failure.details } : {}) },
          retryable: failure.retryable,
          kind: failure.kind,
          ...(Object.keys(outputs).length > 0 ? { outputs } : {}),
        };
        const status = statusOf(failure.kind);
        await this.finish(claim, ws, channel, heartbeat, { kind: "fail", body }, { inputs, usage, gpus, timings, annotations, status, exit, outputs });
        say(`job ${tag} ${status}: ${failure.code === status ? "" : `${failure.code}: `}${failure.message.split("\n")[0] ?? ""}`);
      }
    } finally {
      heartbeat.stop();
      if (!this.options.keepWorkspaces) await rm(ws, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * Runs the handler; once the attempt is aborted, waits at most the grace period (plus time for
   * a final checkpoint upload) for it to wind down, so a handler that ignores its signal cannot
   * hold a stopping worker.
   */
  private async runHandler(run: () => Promise<HandlerResult | void>, signal: AbortSignal, graceMs: number): Promise<Outcome> {
    let timer: NodeJS.Timeout | undefined;
    const handlerDone: Promise<Outcome> = Promise.resolve()
      .then(run)
      .then(
        (result): Outcome => ({ ok: true, result }),
        (error: unknown): Outcome => ({ ok: false, error }),
      );
    const deadline = new Promise<Outcome>((resolve) => {
      const arm = () => {
        timer = setTimeout(
          () => resolve({ ok: false, timedOut: true, error: new JobFailure("stop_timeout", `the handler did not stop within ${graceMs + STOP_SLACK_MS} ms`) }),
          graceMs + STOP_SLACK_MS,
        );
      };
      if (signal.aborted) arm();
      else signal.addEventListener("abort", arm, { once: true });
    });
    try {
      return await Promise.race([handlerDone, deadline]);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** What to report for an outcome: null for success. An abort decides over what the handler said. */
  private failureOf(outcome: Outcome, signal: AbortSignal): JobFailure | null {
    if (signal.aborted) {
      const reason = String(signal.reason);
      const details = !outcome.ok && outcome.error instanceof JobFailure ? outcome.error.details : undefined;
      if (reason === "canceled") return new JobFailure("canceled", "canceled while running", { kind: "canceled", retryable: false, details });
      if (reason === "guardrail_max_runtime_s") {
        if (!outcome.ok && outcome.error instanceof JobFailure && outcome.error.code === "guardrail_max_runtime_s") return outcome.error;
        return new JobFailure("guardrail_max_runtime_s", "stopped: max_runtime_s reached", { kind: "guardrail", retryable: false, details });
      }
      return new JobFailure("preempted", "the worker stopped while the job was running", { kind: "preempted", retryable: true, details });
    }
    if (outcome.ok) return null;
    if (outcome.error instanceof JobFailure) return outcome.error;
    const err = outcome.error;
    const message = err instanceof Error ? err.message : String(err);
    return new JobFailure("handler_error", message, { retryable: true, details: err instanceof Error && err.stack ? { stack: err.stack.split("\n").slice(0, 12).join("\n") } : undefined });
  }

  private async uploadOutputs(claim: Claim, dir: string, kinds: Map<string, ArtifactKind>, parents: string[]): Promise<JobOutputs> {
    const { job } = claim;
    const outputs: JobOutputs = {};
    for (const path of await listFiles(dir)) {
      const rel = relative(dir, path).split(sep).join("/");
      const mediaType = mediaTypeOf(rel);
      const patience = Math.max(10_000, (this.registration?.lease_ttl_s ?? 30) * 1000);
      const blob = await withRetries(() => this.cache.upload(path, mediaType), patience);
      const art = await withRetries(() => this.api.createArtifact({
        name: `${job.name ?? job.id}/${rel}`,
        kind: kinds.get(rel) ?? "other",
        digest: blob.digest,
        media_type: mediaType,
        metadata: { job_id: job.id, attempt: claim.lease.attempt, path: rel },
        producer_job_id: job.id,
        parents,
        project: job.project,
      }), patience);
      outputs[rel] = { digest: blob.digest, size: blob.size, media_type: mediaType, artifact_id: art.id };
    }
    return outputs;
  }

  private async finish(
    claim: Claim,
    ws: string,
    channel: LeaseChannel,
    heartbeat: { stop(): void },
    report: { kind: "complete"; outputs: JobOutputs } | { kind: "fail"; body: FailRequest },
    m: ManifestParts,
  ): Promise<void> {
    await channel.close();
    // The workspace goes before the report, so whoever sees the job finished sees it cleaned up.
    if (!this.options.keepWorkspaces) await rm(ws, { recursive: true, force: true }).catch(() => undefined);
    const manifest = await this.manifest(claim, m);
    const { lease } = claim;
    try {
      await withRetries(() =>
        report.kind === "complete"
          ? this.api.complete(lease.id, { outputs: report.outputs, usage: m.usage, manifest })
          : this.api.fail(lease.id, { ...report.body, usage: m.usage, manifest }),
        Math.max(10_000, (this.registration?.lease_ttl_s ?? 30) * 1000),
      );
    } catch (err) {
      if (err instanceof ForgeError && err.code === "lease_lost") this.options.log(`lease of ${claim.job.id}#${lease.attempt} was lost before it could be reported`);
      else this.options.log(`reporting ${claim.job.id}#${lease.attempt} failed: ${(err as Error).message}`);
    } finally {
      heartbeat.stop();
    }
  }

  private async manifest(
    claim: Claim,
    m: ManifestParts,
  ): Promise<Partial<AttemptManifest> & { annotations: Record<string, unknown> }> {
    const assigned = new Set(m.gpus.map((g) => g.index));
    const gpus: (Gpu & { assigned: boolean })[] = this.gpus.map((g) => ({ ...g, assigned: assigned.has(g.index) }));
    const driver = this.gpus.find((g) => g.driver !== undefined)?.driver;
    return {
      attempt: claim.lease.attempt,
      lease_id: claim.lease.id,
      spec: claim.job.spec,
      inputs: m.inputs,
      outputs: m.outputs ?? {},
      worker: {
        ...(this.registration ? { id: this.registration.id } : {}),
        name: this.options.name,
        hostname: this.hw.hostname,
        cpu_model: this.hw.cpu_model,
        cpus: this.hw.cpus,
        memory_gb: this.hw.memory_gb,
        gpus,
        ...(driver !== undefined ? { driver } : {}),
      },
      software: await softwareVersions(),
      timings: m.timings,
      exit: { status: m.status, ...(m.exit ? { code: m.exit.code, signal: m.exit.signal } : {}) },
      usage: m.usage,
      annotations: m.annotations,
    };
  }

  private startHeartbeat(leaseId: string, controller: AbortController, onLost: () => void, tag: string): { stop(): void } {
    const everyMs = this.options.heartbeatIntervalMs ?? (this.registration?.heartbeat_interval_s ?? 5) * 1000;
    let inflight = false;
    let stopped = false;
    const beat = async () => {
      if (inflight || stopped) return;
      inflight = true;
      try {
        const hb = await this.api.heartbeat(leaseId);
        if (hb.cancel_requested && !controller.signal.aborted && !stopped) {
          this.options.log(`job ${tag} canceled: stopping it`);
          controller.abort("canceled");
        }
      } catch (err) {
        if (err instanceof ForgeError && err.code === "lease_lost") onLost();
        // Anything else is transient: the next beat tries again before the lease runs out.
      } finally {
        inflight = false;
      }
    };
    const timer = setInterval(() => void beat().catch(() => undefined), everyMs);
    return {
      stop() {
        stopped = true;
        clearInterval(timer);
      },
    };
  }
}

function statusOf(kind: JobFailure["kind"]): string {
  switch (kind) {
    case "error":
      return "failed";
    case "preempted":
      return "preempted";
    case "canceled":
      return "canceled";
    case "guardrail":
      return "guardrail";
  }
}

function exitOf(result: HandlerResult | void | undefined): { code: number | null; signal: string | null } | undefined {
  return result && result.exit ? result.exit : undefined;
}

function exitOfDetails(details: unknown): { code: number | null; signal: string | null } | undefined {
  if (typeof details !== "object" || details === null) return undefined;
  const exit = (details as { exit?: unknown }).exit;
  if (typeof exit !== "object" || exit === null) return undefined;
  const e = exit as { code?: unknown; signal?: unknown };
  return { code: typeof e.code === "number" ? e.code : null, signal: typeof e.signal === "string" ? e.signal : null };
}

/**
 * Retries a report on transient failures (unreachable server, 5xx, 429) until `forMs` has
 * passed: losing a completion means running the job again, and a control plane that restarts
 * within the lease TTL still honours the lease.
 */
async function withRetries<T>(fn: () => Promise<T>, forMs: number): Promise<T> {
  const deadline = Date.now() + forMs;
  let delay = 250;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const retryable = err instanceof ForgeError && err.retryable;
      if (!retryable || Date.now() >= deadline) throw err;
      await abortableDelay(Math.min(err.retryAfterS !== undefined ? err.retryAfterS * 1000 : delay, Math.max(0, deadline - Date.now())));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
      else if (e.isSymbolicLink()) {
        const s = await stat(p).catch(() => null);
        if (s?.isFile()) out.push(p);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

const MEDIA_TYPES: Record<string, string> = {
  ".json": "application/json",
  ".jsonl": "application/x-ndjson",
  ".ndjson": "application/x-ndjson",
  ".txt": "text/plain",
  ".log": "text/plain",
  ".md": "text/markdown",
  ".csv": "text/csv",
  ".tsv": "text/tab-separated-values",
  ".html": "text/html",
  ".yaml": "application/yaml",
  ".yml": "application/yaml",
  ".parquet": "application/vnd.apache.parquet",
  ".tar": "application/x-tar",
  ".gz": "application/gzip",
  ".zip": "application/zip",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".svg": "image/svg+xml",
  ".pdf": "application/pdf",
};

/** Media type of an output by its extension; `application/octet-stream` otherwise (weights, tensors). */
export function mediaTypeOf(path: string): string {
  return MEDIA_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
}
