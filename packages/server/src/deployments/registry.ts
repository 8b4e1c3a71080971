import {
  deploymentIdOf,
  ForgeError,
  JobSubmission,
  type Deployment,
  type DeploymentStatus,
  type Job,
  type ListDeploymentsQuery,
  type WorkerDeploymentState,
} from "@nexa/core";
import type { Kysely } from "kysely";
import type { Queue } from "../queue.js";
import { iso, jobFromRow, json } from "../rows.js";
import type { Database } from "../store/index.js";
import type { DeploymentsTable } from "../store/schema.js";

/** Statuses in which a deployment is meant to be served (and is started again if its worker is lost). */
const LIVE: DeploymentStatus[] = ["starting", "healthy", "unhealthy"];
/** Statuses a worker still serving the deployment must be told to stop. */
const ENDED: DeploymentStatus[] = ["stopping", "stopped", "failed"];

/** What the `deploy` handler annotates its attempt with (see packages/worker handlers/deploy.ts). */
interface DeployAnnotation {
  deployment_id?: string;
  url?: string;
  backend?: string;
}

/** A deployment row as the API returns it. */
export function deploymentFromRow(row: DeploymentsTable): Deployment {
  return {
    id: row.id,
    name: row.name,
    status: row.status as DeploymentStatus,
    url: row.url,
    backend: row.backend,
    worker_id: row.worker_id,
    job_id: row.job_id,
    restarts: row.restarts,
    error: row.error,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    stopped_at: row.stopped_at === null ? null : iso(row.stopped_at),
  };
}

/**
 * Deployments as a control-plane resource. A row is created when a `deploy` job is submitted
 * (`starting`), becomes `healthy` with the worker's URL when the job succeeds, and `failed` when
 * it fails for good. `stop` asks the serving worker (through its worker heartbeat) to stop it;
 * a lost worker's deployments get a new `deploy` job from the stored submission, so another
 * worker serves them. Every state lives in the `deployments` table: a restarted control plane
 * (or another replica) picks up where this one left off.
 *
 * Transitions are compare-and-set updates on `(id, job_id, status)`, so replicas racing on one
 * deployment change it once.
 *
 * @example
 * const registry = new DeploymentRegistry(ctx.db, ctx.queue);
 * ctx.queue.observers.push(registry.observer());
 * await registry.recover();
 */
export class DeploymentRegistry {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly queue: Queue,
    private readonly log: (msg: string, err?: unknown) => void = () => undefined,
  ) {}

  /** The queue hooks: deploy submissions and outcomes, lost workers. */
  observer(): { onSubmitted(jobs: Job[], orgId: string): void; onJobFinished(job: Job, orgId: string): void; onWorkersLost(workerIds: string[]): void } {
    return {
      onSubmitted: (jobs, orgId) => {
        const deploys = jobs.filter((j) => j.type === "deploy");
        if (deploys.length > 0) this.track(this.created(orgId, deploys), "recording submitted deploy jobs");
      },
      onJobFinished: (job, orgId) => {
        if (job.type === "deploy") this.track(this.jobFinished(orgId, job), `recording the outcome of ${job.id}`);
      },
      onWorkersLost: (workerIds) => {
        if (workerIds.length > 0) this.track(this.workersLost(workerIds), "moving deployments off lost workers");
      },
    };
  }

  /** Waits for the work the queue hooks started (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track(p: Promise<unknown>, what: string): void {
    const t = p.catch((err: unknown) => this.log(`deployments: ${what} failed`, err)).finally(() => this.pending.delete(t));
    this.pending.add(t);
  }

  // ── reads ──────────────────────────────────────────────────────────────────────────────

  /** Deployments of an org, newest first. */
  async list(orgId: string, query: ListDeploymentsQuery): Promise<Deployment[]> {
    let q = this.db.selectFrom("deployments").selectAll().where("org_id", "=", orgId);
    if (query.status !== undefined) q = q.where("status", "=", query.status);
    if (query.name !== undefined) q = q.where("name", "=", query.name);
    const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(query.limit).execute();
    return rows.map(deploymentFromRow);
  }

  /** One deployment of the org, or 404 (also for another org's). */
  async get(orgId: string, id: string): Promise<Deployment> {
    return deploymentFromRow(await this.row(orgId, id));
  }

  private async row(orgId: string, id: string): Promise<DeploymentsTable> {
    const row = await this.db.selectFrom("deployments").selectAll().where("id", "=", id).where("org_id", "=", orgId).executeTakeFirst();
    if (!row) throw new ForgeError("not_found", `deployment ${id} not found`);
    return row;
  }

  // ── stop ───────────────────────────────────────────────────────────────────────────────

  /**
   * Stops a deployment: a served one becomes `stopping` until its worker confirms (`stopped` at
   * once when that worker is gone); one whose job is still queued or running has the job
   * canceled. Stopping a stopped or failed deployment changes nothing.
   */
  async stop(orgId: string, id: string): Promise<Deployment> {
    for (let tries = 0; tries < 5; tries++) {
      const row = await this.row(orgId, id);
      if (row.status === "stopped" || row.status === "failed" || row.status === "stopping") return deploymentFromRow(row);
      const job = await this.db.selectFrom("jobs").select(["status"]).where("id", "=", row.job_id).executeTakeFirst();
      const jobLive = job !== undefined && (job.status === "queued" || job.status === "running");
      const served = row.worker_id !== null && !jobLive && (await this.workerOnline(row.worker_id));
      const next: DeploymentStatus = served || jobLive ? "stopping" : "stopped";
      if (!(await this.transition(row, next))) continue; // changed under us: read again
      if (jobLive) {
        // Its job decides: canceled while queued (at once) or running (on its next heartbeat);
        // the outcome then ends the deployment (see jobFinished).
        await this.queue.cancel(orgId, row.job_id).catch((err: unknown) => {
          if (!(err instanceof ForgeError && err.code === "conflict")) throw err;
        });
        await this.settleStopping(orgId, row.job_id);
      }
      return this.get(orgId, id);
    }
    throw new ForgeError("conflict", `deployment ${id} is changing; try again`);
  }

  /** A stopping deployment whose job already ended without serving it is stopped. */
  private async settleStopping(orgId: string, jobId: string): Promise<void> {
    const row = await this.db.selectFrom("deployments").selectAll().where("org_id", "=", orgId).where("job_id", "=", jobId).executeTakeFirst();
    if (!row || row.status !== "stopping") return;
    const job = await this.db.selectFrom("jobs").select(["status"]).where("id", "=", jobId).executeTakeFirst();
    if (job && (job.status === "canceled" || job.status === "failed")) await this.transition(row, "stopped");
  }

  // ── worker heartbeat ───────────────────────────────────────────────────────────────────

  /**
   * A worker reports the deployments it supervises; answers the ids it must stop: those asked
   * to stop, ended, or served by another worker now. Reported states update the served ones.
   */
  async heartbeat(orgId: string, workerId: string, reported: WorkerDeploymentState[]): Promise<string[]> {
    if (reported.length === 0) return [];
    const byId = new Map(reported.map((r) => [r.id, r]));
    const rows = await this.db.selectFrom("deployments").selectAll().where("org_id", "=", orgId).where("id", "in", [...byId.keys()]).execute();
    const stop: string[] = [];
    // An id this org has no deployment of (a deploy spec naming a made-up or another org's
    // deployment_id) is stopped — unless it is a first job's id whose row is still being written.
    const known = new Set(rows.map((r) => r.id));
    const unknown = [...byId.values()].filter((r) => !known.has(r.id) && r.state !== "stopped" && r.state !== "failed").map((r) => r.id);
    if (unknown.length > 0) {
      const jobIds = unknown.map((id) => `job_${id.slice(4)}`);
      const jobs = await this.db.selectFrom("jobs").select(["id"]).where("org_id", "=", orgId).where("type", "=", "deploy").where("id", "in", jobIds).execute();
      const pending = new Set(jobs.map((j) => `dep_${j.id.slice(4)}`));
      for (const id of unknown) if (!pending.has(id)) stop.push(id);
    }
    for (const row of rows) {
      const r = byId.get(row.id)!;
      const gone = r.state === "stopped" || r.state === "failed";
      if (row.status === "stopping" && gone && (row.worker_id === null || row.worker_id === workerId)) {
        await this.transition(row, "stopped");
        continue;
      }
      if (ENDED.includes(row.status as DeploymentStatus) || (row.worker_id !== null && row.worker_id !== workerId)) {
        if (!gone) stop.push(row.id);
        continue;
      }
      // Not served by this worker yet (its deploy job is still running): the job's outcome decides.
      if (row.worker_id !== workerId) continue;
      const status: DeploymentStatus | undefined = r.state === "healthy" ? "healthy" : r.state === "starting" || r.state === "restarting" ? "unhealthy" : r.state === "failed" ? "failed" : undefined;
      if (status === undefined) continue;
      const url = r.url ?? row.url;
      if (status === row.status && url === row.url) continue;
      await this.transition(row, status, {
        url,
        ...(status === "failed" ? { error: `the model server kept exiting on worker ${workerId} (${r.restarts} restarts)` } : status === "healthy" ? { error: null } : {}),
      });
    }
    return stop;
  }

  // ── job outcomes ───────────────────────────────────────────────────────────────────────

  /** Records deploy jobs as `starting` deployments (restart jobs are already linked). */
  private async created(orgId: string, jobs: Job[]): Promise<void> {
    const now = Date.now();
    for (const job of jobs) {
      const spec = job.spec as { name?: string; deployment_id?: string };
      const id = deploymentIdOf(job.id, spec);
      await this.db
        .insertInto("deployments")
        .values({
          id,
          org_id: orgId,
          project: job.project,
          name: spec.name ?? job.name ?? id,
          job_id: job.id,
          submission: JSON.stringify(submissionOf(job)),
          worker_id: null,
          url: null,
          backend: null,
          status: "starting",
          restarts: 0,
          error: null,
          created_at: now,
          updated_at: now,
          stopped_at: null,
        })
        .onConflict((oc) => oc.column("id").doNothing())
        .execute();
    }
  }

  /** A deploy job ended: its deployment is served, failed or stopped. */
  private async jobFinished(orgId: string, job: Job): Promise<void> {
    let row = await this.db.selectFrom("deployments").selectAll().where("org_id", "=", orgId).where("job_id", "=", job.id).executeTakeFirst();
    if (!row) {
      // The job finished before its submission was recorded (or a crash lost that): record it now.
      await this.created(orgId, [job]);
      row = await this.db.selectFrom("deployments").selectAll().where("org_id", "=", orgId).where("job_id", "=", job.id).executeTakeFirst();
      if (!row) return; // its id names another job's deployment: nothing of ours to update
    }
    // A failed deployment whose job was retried and then succeeded is served after all.
    if (row.status === "stopped") return;
    if (job.status === "succeeded") {
      const ann = await this.annotation(job.id);
      const served = { worker_id: job.worker_id, url: ann.url ?? null, backend: ann.backend ?? null };
      // Asked to stop while starting: keep `stopping` with its worker, which is told on its next heartbeat.
      if (row.status === "stopping") {
        const online = job.worker_id !== null && (await this.workerOnline(job.worker_id));
        await this.transition(row, online ? "stopping" : "stopped", served);
      } else {
        await this.transition(row, "healthy", { ...served, error: null });
        // The worker may have been lost while the job was finishing.
        if (job.worker_id !== null && !(await this.workerOnline(job.worker_id))) await this.workersLost([job.worker_id]);
      }
    } else if (row.status === "failed") {
      return;
    } else if (row.status === "stopping" || job.status === "canceled") {
      await this.transition(row, "stopped");
    } else {
      const e = job.error;
      await this.transition(row, "failed", { error: e ? `${e.code}: ${e.message}` : `deploy job ${job.id} ${job.status}` });
    }
  }

  private async annotation(jobId: string): Promise<DeployAnnotation> {
    const a = await this.db
      .selectFrom("attempts")
      .select(["manifest"])
      .where("job_id", "=", jobId)
      .where("status", "=", "succeeded")
      .orderBy("attempt", "desc")
      .executeTakeFirst();
    const m = json<{ annotations?: { deployment?: DeployAnnotation } }>(a?.manifest ?? null, {});
    return m.annotations?.deployment ?? {};
  }

  // ── lost workers ───────────────────────────────────────────────────────────────────────

  /**
   * Workers left, were replaced or went silent: their served deployments get a new `deploy` job
   * (restarts + 1, `starting`) and the ones stopping are stopped.
   */
  async workersLost(workerIds: string[]): Promise<void> {
    const rows = await this.db
      .selectFrom("deployments")
      .selectAll()
      .where("worker_id", "in", workerIds)
      .where("status", "in", [...LIVE, "stopping"])
      .execute();
    for (const row of rows) {
      if (row.status === "stopping") await this.transition(row, "stopped");
      else await this.restart(row);
    }
  }

  /** Starts a deployment again: a new deploy job from its stored submission, on whichever worker claims it. */
  private async restart(row: DeploymentsTable, count = true): Promise<void> {
    // Claim the restart first (compare-and-set), so one replica starts one job.
    if (!(await this.transition(row, "starting", { worker_id: null, url: null, restarts: row.restarts + (count ? 1 : 0) }))) return;
    const raw = json<Record<string, unknown>>(row.submission, {});
    const parsed = JobSubmission.safeParse({ ...raw, spec: { ...(raw.spec as object), deployment_id: row.id } });
    if (!parsed.success) {
      await this.setFields(row.id, { status: "failed", error: `cannot start it again: its stored submission is invalid (${parsed.error.issues[0]?.message ?? "?"})` });
      return;
    }
    const { jobs } = await this.queue.submit(row.org_id, [parsed.data as JobSubmission]);
    await this.setFields(row.id, { job_id: jobs[0]!.id });
    this.log(`deployments: ${row.id} (${row.name}) lost its worker ${row.worker_id ?? "?"}: started again as ${jobs[0]!.id}`);
  }

  // ── recovery ───────────────────────────────────────────────────────────────────────────

  /**
   * At start-up, finishes what a stopped control plane left half done: deployments on workers
   * that are offline are moved or stopped, and `starting` ones whose job already ended get that
   * outcome (a restart whose job was never submitted is started again).
   */
  async recover(): Promise<void> {
    const served = await this.db
      .selectFrom("deployments")
      .leftJoin("workers", "workers.id", "deployments.worker_id")
      .select(["deployments.worker_id"])
      .where("deployments.status", "in", [...LIVE, "stopping"])
      .where("deployments.worker_id", "is not", null)
      .where((eb) => eb.or([eb("workers.status", "is", null), eb("workers.status", "!=", "online")]))
      .execute();
    const lost = [...new Set(served.map((r) => r.worker_id!))];
    if (lost.length > 0) await this.workersLost(lost);
    const stuck = await this.db
      .selectFrom("deployments")
      .innerJoin("jobs", "jobs.id", "deployments.job_id")
      .selectAll("deployments")
      .where("deployments.status", "in", ["starting", "stopping"])
      .where("deployments.worker_id", "is", null)
      .where("jobs.status", "in", ["succeeded", "failed", "canceled"])
      .execute();
    for (const s of stuck) {
      const job = jobFromRow(await this.queue.getRow(s.org_id, s.job_id));
      if (s.status === "starting" && job.status === "succeeded" && (job.worker_id === null || !(await this.workerOnline(job.worker_id)))) {
        // Served by a worker that is gone before the outcome was recorded, or a restart claimed
        // before a crash whose new job was never submitted: start it (again) either way.
        await this.restart(s, false);
        continue;
      }
      await this.jobFinished(s.org_id, job);
    }
  }

  // ── helpers ────────────────────────────────────────────────────────────────────────────

  private async workerOnline(workerId: string): Promise<boolean> {
    const w = await this.db.selectFrom("workers").select(["status"]).where("id", "=", workerId).executeTakeFirst();
    return w?.status === "online";
  }

  /** Compare-and-set on the row as read: returns false when someone changed it first. */
  private async transition(row: DeploymentsTable, status: DeploymentStatus, fields: Partial<Pick<DeploymentsTable, "worker_id" | "url" | "backend" | "restarts" | "error">> = {}): Promise<boolean> {
    const now = Date.now();
    const res = await this.db
      .updateTable("deployments")
      .set({ ...fields, status, updated_at: now, ...(status === "stopped" ? { stopped_at: now } : {}) })
      .where("id", "=", row.id)
      .where("job_id", "=", row.job_id)
      .where("status", "=", row.status)
      .where("updated_at", "=", row.updated_at)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  private async setFields(id: string, fields: Partial<Pick<DeploymentsTable, "job_id" | "status" | "error">>): Promise<void> {
    await this.db.updateTable("deployments").set({ ...fields, updated_at: Date.now() }).where("id", "=", id).execute();
  }
}

/** The submission that starts a deployment again (its spec without the deployment id). */
function submissionOf(job: Job): Record<string, unknown> {
  const { deployment_id: _omit, ...spec } = job.spec as Record<string, unknown>;
  return {
    type: job.type,
    spec,
    ...(job.name !== null ? { name: job.name } : {}),
    priority: job.priority,
    requirements: job.requirements,
    limits: job.limits,
    retry: job.retry,
    project: job.project,
  };
}
