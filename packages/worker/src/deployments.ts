import { createServer } from "node:net";
import { appendFile, rm } from "node:fs/promises";
import { ProcessSupervisor, type ProcessExit } from "./supervisor.js";

/** Log lines of a deployment kept in memory (quoted when it fails to start). */
const TAIL_LINES = 40;

/** What a {@link DeploymentSupervisor} runs: one serving process, restarted when it dies. */
export interface DeploymentSpec {
  /** Stable id (the `deploy` job's id). */
  id: string;
  /** The control plane's deployment id (`dep_…`) this serves; reported in worker heartbeats. @default id */
  deploymentId?: string;
  /** Model name clients use. */
  model: string;
  backend: "vllm" | "torch";
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Base URL the server listens on (`http://host:port`). */
  url: string;
  /** Path polled for health. @default "/health" */
  healthPath?: string;
  /** Server output is appended here (the job's log stream ends with the job). */
  logFile?: string;
  /**
   * Written with `<pid> <starttime>` at each start: a worker restarted on the same workdir kills
   * the process group it names (as for job processes), so a server never outlives its supervisor.
   */
  pidFile?: string;
  /** A folder removed once the deployment is stopped (its unpacked model). */
  removeOnStop?: string;
  /** SIGTERM → SIGKILL grace when stopped. @default 10000 */
  graceMs?: number;
  /** Restarts allowed within {@link restartWindowMs} before the deployment is given up. @default 5 */
  maxRestarts?: number;
  /** @default 600000 */
  restartWindowMs?: number;
}

/** A deployment as {@link DeploymentSupervisor.list} reports it. */
export interface DeploymentInfo {
  id: string;
  /** The control plane's deployment id (`dep_…`). */
  deploymentId: string;
  model: string;
  backend: "vllm" | "torch";
  url: string;
  pid: number | undefined;
  /** `starting`, `healthy`, `restarting`, `failed` (gave up restarting) or `stopped`. */
  state: "starting" | "healthy" | "restarting" | "failed" | "stopped";
  restarts: number;
  started_at: string;
}

class Deployment {
  proc: ProcessSupervisor | undefined;
  state: DeploymentInfo["state"] = "starting";
  restarts = 0;
  readonly restartTimes: number[] = [];
  readonly tail: string[] = [];
  readonly startedAt = new Date();
  stopping = false;
  onState: ((state: DeploymentInfo["state"]) => void) | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  healthTimer: NodeJS.Timeout | undefined;
  constructor(readonly spec: DeploymentSpec) {}
}

/**
 * Keeps the serving processes of `deploy` jobs alive beyond the job attempt: each runs under a
 * {@link ProcessSupervisor} (own process group, SIGTERM → grace → SIGKILL), is started again
 * (after a back-off of 1 s doubling to 30 s) when it exits on its own, and is given up after
 * `maxRestarts` restarts within `restartWindowMs`. {@link stopAll} stops every one: the worker
 * calls it on shutdown; a last-resort `exit` hook kills the process groups if it is not called.
 *
 * @example
 * const dep = await deployments.start({ id: job.id, model: "tiny", backend: "torch", argv, env, cwd, url });
 * await deployments.waitHealthy(job.id, { timeoutMs: 600_000, signal });
 */
export class DeploymentSupervisor {
  private readonly deployments = new Map<string, Deployment>();
  private exitHook: (() => void) | undefined;

  /** Starts a deployment (replacing a stopped or failed one of the same id). */
  async start(spec: DeploymentSpec): Promise<DeploymentInfo> {
    const old = this.deployments.get(spec.id);
    if (old && old.state !== "stopped" && old.state !== "failed") throw new Error(`deployment ${spec.id} is already running`);
    const dep = new Deployment(spec);
    this.deployments.set(spec.id, dep);
    this.installExitHook();
    await this.launch(dep);
    return this.info(dep);
  }

  private async launch(dep: Deployment): Promise<void> {
    const { spec } = dep;
    const onLine = (stream: "stdout" | "stderr", line: string) => {
      dep.tail.push(line);
      if (dep.tail.length > TAIL_LINES) dep.tail.shift();
      if (spec.logFile !== undefined) void appendFile(spec.logFile, `${new Date().toISOString()} ${stream} ${line}\n`).catch(() => undefined);
    };
    const proc = await ProcessSupervisor.spawn({
      argv: spec.argv,
      env: spec.env,
      cwd: spec.cwd,
      graceMs: spec.graceMs ?? 10_000,
      onLine,
      ...(spec.pidFile !== undefined ? { pidFile: spec.pidFile } : {}),
    });
    dep.proc = proc;
    void proc.exited.then((exit) => this.onExit(dep, proc, exit));
    this.watchHealth(dep);
  }

  private onExit(dep: Deployment, proc: ProcessSupervisor, exit: ProcessExit): void {
    if (dep.proc !== proc) return;
    if (dep.healthTimer) clearTimeout(dep.healthTimer);
    if (dep.stopping) {
      this.setState(dep, "stopped");
      return;
    }
    const now = Date.now();
    const window = dep.spec.restartWindowMs ?? 600_000;
    while (dep.restartTimes.length > 0 && (dep.restartTimes[0] ?? 0) < now - window) dep.restartTimes.shift();
    const how = exit.spawnError ? `could not start: ${exit.spawnError.message}` : exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal ?? "a signal"}`;
    dep.tail.push(`[nexa] deployment ${dep.spec.id}: the server ${how}`);
    if (exit.spawnError || dep.restartTimes.length >= (dep.spec.maxRestarts ?? 5)) {
      this.setState(dep, "failed");
      return;
    }
    const delay = Math.min(30_000, 1000 * 2 ** dep.restartTimes.length);
    dep.restartTimes.push(now);
    dep.restarts += 1;
    this.setState(dep, "restarting");
    dep.restartTimer = setTimeout(() => {
      dep.restartTimer = undefined;
      if (dep.stopping) return;
      this.launch(dep).catch((err: unknown) => {
        dep.tail.push(`[nexa] restart failed: ${(err as Error).message}`);
        this.setState(dep, "failed");
      });
    }, delay);
  }

  /** Polls the health path of the current process until it answers 200. */
  private watchHealth(dep: Deployment): void {
    const proc = dep.proc;
    const url = dep.spec.url + (dep.spec.healthPath ?? "/health");
    const tick = async () => {
      if (dep.proc !== proc || dep.stopping || proc?.hasExited) return;
      if (await healthy(url)) {
        this.setState(dep, "healthy");
        return;
      }
      dep.healthTimer = setTimeout(() => void tick(), 250);
    };
    if (dep.state !== "restarting") this.setState(dep, "starting");
    void tick();
  }

  private setState(dep: Deployment, state: DeploymentInfo["state"]): void {
    dep.state = state;
    dep.onState?.(state);
  }

  /**
   * Resolves once the deployment answers its health path; rejects when it fails for good, when
   * `timeoutMs` passes or `signal` aborts (the deployment keeps running: the caller decides).
   */
  async waitHealthy(id: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<DeploymentInfo> {
    const dep = this.deployments.get(id);
    if (!dep) throw new Error(`no deployment ${id}`);
    if (dep.state === "healthy") return this.info(dep);
    return new Promise<DeploymentInfo>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        dep.onState = undefined;
        if (err) reject(err);
        else resolve(this.info(dep));
      };
      const timer = setTimeout(() => done(new DeploymentError("health_timeout", `not healthy within ${options.timeoutMs / 1000} s`, dep.tail)), options.timeoutMs);
      const onAbort = () => done(new DeploymentError("aborted", `stopped waiting: ${String(options.signal?.reason)}`, dep.tail));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.signal?.aborted) onAbort();
      dep.onState = (state) => {
        if (state === "healthy") done();
        else if (state === "failed" || state === "stopped") done(new DeploymentError("server_exited", `the server ${state === "failed" ? "kept exiting" : "was stopped"}`, dep.tail));
        // A server that dies before its first healthy answer is not restarted for ever: the job fails instead.
        else if (state === "restarting") done(new DeploymentError("server_exited", "the server exited before it became healthy", dep.tail));
      };
    });
  }

  /** Every deployment this worker holds. */
  list(): DeploymentInfo[] {
    return [...this.deployments.values()].map((d) => this.info(d));
  }

  /** One deployment, or undefined. */
  get(id: string): DeploymentInfo | undefined {
    const d = this.deployments.get(id);
    return d ? this.info(d) : undefined;
  }

  /** Stops a deployment (SIGTERM, grace, SIGKILL) and waits for its process to exit. */
  async stop(id: string): Promise<void> {
    const dep = this.deployments.get(id);
    if (!dep) return;
    dep.stopping = true;
    if (dep.restartTimer) clearTimeout(dep.restartTimer);
    if (dep.healthTimer) clearTimeout(dep.healthTimer);
    const proc = dep.proc;
    if (proc && !proc.hasExited) {
      proc.stop("deployment_stopped");
      await proc.exited;
    }
    this.setState(dep, "stopped");
    if (dep.spec.removeOnStop !== undefined) await rm(dep.spec.removeOnStop, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Forgets a stopped or failed deployment (the control plane has been told); false if it still runs. */
  forget(id: string): boolean {
    const d = this.deployments.get(id);
    if (!d) return true;
    if (d.state !== "stopped" && d.state !== "failed") return false;
    this.deployments.delete(id);
    return true;
  }

  /** Stops every deployment (worker shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.deployments.keys()].map((id) => this.stop(id)));
    if (this.exitHook) {
      process.removeListener("exit", this.exitHook);
      this.exitHook = undefined;
    }
  }

  private installExitHook(): void {
    if (this.exitHook) return;
    // Last resort when the worker exits without stopAll(): `exit` handlers must be synchronous.
    this.exitHook = () => {
      for (const d of this.deployments.values()) {
        const pid = d.proc?.pid;
        if (pid !== undefined && !d.proc?.hasExited) {
          try {
            process.kill(-pid, "SIGTERM");
          } catch {
            // Already gone.
          }
        }
      }
    };
    process.once("exit", this.exitHook);
  }

  /** The last log lines of a deployment's server. */
  tail(id: string): string[] {
    return [...(this.deployments.get(id)?.tail ?? [])];
  }

  private info(d: Deployment): DeploymentInfo {
    return { id: d.spec.id, deploymentId: d.spec.deploymentId ?? d.spec.id, model: d.spec.model, backend: d.spec.backend, url: d.spec.url, pid: d.proc?.pid, state: d.state, restarts: d.restarts, started_at: d.startedAt.toISOString() };
  }
}

/** Why a deployment did not become healthy; `tail` holds the server's last log lines. */
export class DeploymentError extends Error {
  override readonly name = "DeploymentError";
  constructor(
    readonly code: "health_timeout" | "server_exited" | "aborted",
    message: string,
    readonly tail: readonly string[],
  ) {
    super(message);
  }
}

/** The deployments of this worker process (the `deploy` handler starts them here). */
export const deployments = new DeploymentSupervisor();

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** A free TCP port on `host` (so a restarted server keeps its URL). */
export async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
