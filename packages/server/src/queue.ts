import {
  addUsage,
  costOf,
  decideFailure,
  ForgeError,
  isTerminal,
  matchRequirements,
  RetryPolicy,
  zeroUsage,
  type Capabilities,
  type BatchCompleteItem,
  type BatchCompleteResult,
  type Claim,
  type CompleteRequest,
  type FailRequest,
  type Job,
  type JobStatus,
  type JobSubmission,
  type LogBatch,
  type MetricBatch,
  type PriceTable,
  type Requirements,
  type Usage,
} from "@nexa/core";
import { CompiledQuery, sql, type Kysely, type RawBuilder, type Transaction } from "kysely";
import type { Bus } from "./bus.js";
import { newId } from "./ids.js";
import { iso, jobFromRow, json, type ClaimedRow } from "./rows.js";
import type { Backend, Database } from "./store/index.js";
import type { AttemptsTable, JobEventsTable, JobsTable, UsageTable, WorkersTable } from "./store/schema.js";

/** Lease timing. */
export interface QueueTiming {
  leaseTtlMs: number;
  heartbeatIntervalMs: number;
}

/** Hooks other components attach to job transitions (the workflow engine, Prometheus). */
export interface QueueObserver {
  onJobFinished?(job: Job, orgId: string): void;
  /** Jobs were claimed; `latencyMs[i]` is how long `jobIds[i]` waited since it became runnable. */
  onClaimed?(jobIds: string[], latencyMs: number[]): void;
  /** New jobs were inserted (not an idempotent repeat). */
  onSubmitted?(jobs: Job[], orgId: string): void;
  /** Workers deregistered, registered again under their name, or were marked offline. */
  onWorkersLost?(workerIds: string[]): void;
}

type Db = Kysely<Database> | Transaction<Database>;

/** A parked claim a submission took, and the claims it made for it (empty: nothing matched after all). */
interface Served {
  parked: ParkedClaim;
  claims: ClaimedRow[];
}

/**
 * A long-poll claim parked on this replica that a submission may serve itself
 * ({@link Queue.assignParked}): only for workers the set-based claim serves (no GPUs, no
 * labels) in orgs without a running limit.
 */
interface ParkedClaim {
  orgId: string;
  worker: WorkersTable;
  caps: Capabilities;
  accepts: readonly string[];
  maxJobs: number;
  signal: AbortSignal | undefined;
  /** Set (synchronously) by the submission that serves it; `deliver` answers its claims after the commit. */
  taken?: { claims: Promise<ClaimedRow[]>; deliver: (claims: ClaimedRow[]) => void };
  wake: () => void;
}

// Every column of a job row by PostgreSQL type, for the array-parameter insert of a submission.
const JOB_TEXT_COLUMNS = ["id", "org_id", "project", "type", "name", "status", "spec", "requirements", "limits", "retry", "worker_id", "lease_id", "outputs", "error", "usage", "idempotency_key", "workflow_run_id"] as const;
const JOB_INT_COLUMNS = ["priority", "req_gpus", "req_complex", "attempt", "failures", "max_attempts", "created_at", "started_at", "finished_at", "run_after", "cancel_requested", "log_seq"] as const;
const JOB_FLOAT_COLUMNS = ["req_cpus", "req_memory_gb"] as const;
// A new column must be named above, or the insert fails loudly (the type check below).
type Missing = Exclude<keyof JobsTable, (typeof JOB_TEXT_COLUMNS)[number] | (typeof JOB_INT_COLUMNS)[number] | (typeof JOB_FLOAT_COLUMNS)[number]>;
const allJobColumnsNamed: [Missing] extends [never] ? true : Missing = true;
void allJobColumnsNamed;

const CLAIM_WINDOW = 64;

/** The columns of the set of finished leases that `completeMany` writes from. */
const COMPLETE_COLUMNS = ["lease_id", "job_id", "manifest", "att_usage", "job_usage", "outputs", "use_id", "attempt", "project", "type", "wall_s", "cpu_s", "gpu_s", "gpu_detail", "tokens_in", "tokens_out", "cost_usd"] as const;

const JOB_COLUMNS = [...JOB_TEXT_COLUMNS, ...JOB_INT_COLUMNS, ...JOB_FLOAT_COLUMNS] as const;
const ATTEMPT_COLUMNS = ["id", "job_id", "org_id", "worker_id", "attempt", "status", "created_at", "expires_at", "ended_at", "manifest", "usage", "error"] as const satisfies readonly (keyof AttemptsTable)[];
const EVENT_COLUMNS = ["job_id", "org_id", "ts", "type", "status", "attempt", "data"] as const satisfies readonly (keyof JobEventsTable)[];
const USAGE_COLUMNS = ["id", "org_id", "job_id", "attempt", "project", "type", "ts", "wall_s", "cpu_s", "gpu_s", "gpu_detail", "tokens_in", "tokens_out", "cost_usd"] as const satisfies readonly (keyof UsageTable)[];
type PgArrayType = "text" | "int8" | "float8";

/** PostgreSQL: one column of a set of rows as one typed array parameter (for `unnest`). */
function pgArray<R, K extends keyof R>(rows: readonly R[], key: K, type: PgArrayType): RawBuilder<unknown> {
  return sql`${rows.map((r) => r[key])}::${sql.raw(type)}[]`;
}

/** Rows per multi-row insert on SQLite (its limit is 32,766 bound values). */
const INSERT_CHUNK = 200;
const insertTexts = new Map<string, string>();

/**
 * SQLite: a multi-row insert from a statement text built once per (table, row count), so the
 * submission and claim paths skip Kysely's query building, which cost as much as running them.
 */
async function insertRows<C extends string>(db: Db, table: string, columns: readonly C[], rows: Record<C, unknown>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    const key = `${table}/${chunk.length}`;
    let text = insertTexts.get(key);
    if (text === undefined) {
      const one = `(${columns.map(() => "?").join(", ")})`;
      text = `insert into ${table} (${columns.join(", ")}) values ${Array.from({ length: chunk.length }, () => one).join(", ")}`;
      insertTexts.set(key, text);
    }
    const params: unknown[] = [];
    for (const r of chunk) for (const c of columns) params.push(r[c]);
    await db.executeQuery(CompiledQuery.raw(text, params));
  }
}

const valuesTexts = new Map<string, string>();

/**
 * SQLite: `with v(columns) as (values (?, …), …) <statement>` over the rows, in chunks of
 * {@link INSERT_CHUNK}, the statement's own parameters after the rows'. Like {@link insertRows},
 * each (statement, row count) text is built once.
 */
async function updateFromValues<C extends string>(db: Db, columns: readonly C[], rows: Record<C, unknown>[], statement: string, params: unknown[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    const key = `${chunk.length}/${columns.join(",")}/${statement}`;
    let text = valuesTexts.get(key);
    if (text === undefined) {
      const one = `(${columns.map(() => "?").join(", ")})`;
      text = `with v(${columns.join(", ")}) as (values ${Array.from({ length: chunk.length }, () => one).join(", ")}) ${statement}`;
      valuesTexts.set(key, text);
    }
    const values: unknown[] = [];
    for (const r of chunk) for (const c of columns) values.push(r[c]);
    await db.executeQuery(CompiledQuery.raw(text, [...values, ...params]));
  }
}

/**
 * The durable job queue. At-least-once execution with exactly-once acceptance: every claim
 * creates an attempt whose id is the lease's fencing token; heartbeats, logs and completions
 * carrying a lease that is no longer the job's current one get `lease_lost` and change nothing.
 */
export class Queue {
  readonly observers: QueueObserver[] = [];
  /** Long-poll claims a submission can serve in its own transaction or statement, oldest first. */
  private readonly parked = new Set<ParkedClaim>();
  /** `org/project` pairs known to have a projects row (SQLite: this process is the only writer; rows are never deleted). */
  private readonly knownProjects = new Set<string>();

  constructor(
    private readonly backend: Backend,
    private readonly bus: Bus,
    readonly timing: QueueTiming,
    private readonly prices: () => PriceTable,
  ) {}

  private get db(): Kysely<Database> {
    return this.backend.db;
  }

  // ── submission ─────────────────────────────────────────────────────────────────────────

  /**
   * Inserts jobs in one transaction. With an idempotency key, an existing job with that key is
   * returned instead (`created: false`).
   */
  async submit(
    orgId: string,
    subs: JobSubmission[],
    options: { idempotencyKey?: string; workflowRunId?: string } = {},
  ): Promise<{ jobs: Job[]; created: boolean }> {
    if (options.idempotencyKey !== undefined) {
      const existing = await this.findIdempotent(orgId, options.idempotencyKey);
      if (existing) return { jobs: [existing], created: false };
    }
    const now = Date.now();
    const served: Served[] = [];
    const rows: JobsTable[] = subs.map((s, i) => {
      const retry = RetryPolicy.parse(s.retry ?? {});
      const req = s.requirements;
      return {
        id: newId("job"),
        org_id: orgId,
        project: s.project,
        type: s.type,
        name: s.name ?? null,
        status: "queued",
        spec: JSON.stringify(s.spec),
        priority: s.priority,
        requirements: JSON.stringify(req),
        limits: JSON.stringify(s.limits),
        retry: JSON.stringify(retry),
        req_gpus: req.gpus ?? (req.gpu_type !== undefined || req.gpu_memory_gb !== undefined ? 1 : 0),
        req_cpus: req.cpus ?? 0,
        req_memory_gb: req.memory_gb ?? 0,
        // Needs matching beyond the indexed columns: labels, or GPU type/memory of GPUs it does use.
        req_complex: Object.keys(req.labels ?? {}).length > 0 || ((req.gpus ?? 1) > 0 && (req.gpu_type !== undefined || req.gpu_memory_gb !== undefined)) ? 1 : 0,
        attempt: 0,
        failures: 0,
        max_attempts: retry.max_attempts,
        created_at: now,
        started_at: null,
        finished_at: null,
        run_after: now,
        worker_id: null,
        lease_id: null,
        outputs: null,
        error: null,
        usage: JSON.stringify(zeroUsage()),
        cancel_requested: 0,
        idempotency_key: i === 0 ? (options.idempotencyKey ?? null) : null,
        workflow_run_id: options.workflowRunId ?? null,
        log_seq: 0,
      };
    });
    try {
      if (this.parked.size > 0) this.assignParked(orgId, rows, now, served);
      if (this.backend.dialect === "postgres") {
        await this.insertJobsPg(orgId, rows, now, served);
      } else {
        const projects = [...new Set(rows.map((r) => r.project))].filter((name) => !this.knownProjects.has(`${orgId}/${name}`));
        const handed = served.flatMap((s) => s.claims);
        await this.db.transaction().execute(async (trx) => {
          await insertRows(trx, "jobs", JOB_COLUMNS, rows);
          if (projects.length > 0) {
            await trx
              .insertInto("projects")
              .values(projects.map((name) => ({ org_id: orgId, name, created_at: now })))
              .onConflict((oc) => oc.columns(["org_id", "name"]).doNothing())
              .execute();
          }
          // `queued` for every job, then `running` for those handed to parked claims, in that order.
          const events: Omit<JobEventsTable, "seq">[] = rows.map((r) => ({ job_id: r.id, org_id: orgId, ts: now, type: "queued", status: "queued", attempt: 0, data: null }));
          for (const { row } of handed) events.push({ job_id: row.id, org_id: orgId, ts: now, type: "running", status: "running", attempt: 1, data: JSON.stringify({ worker_id: row.worker_id }) });
          await insertRows(trx, "job_events", EVENT_COLUMNS, events);
          if (handed.length > 0) {
            const expires = now + this.timing.leaseTtlMs;
            await insertRows(trx, "attempts", ATTEMPT_COLUMNS, handed.map(({ row }) => ({ id: row.lease_id!, job_id: row.id, org_id: orgId, worker_id: row.worker_id!, attempt: 1, status: "active", created_at: now, expires_at: expires, ended_at: null, manifest: null, usage: null, error: null })));
          }
        });
        for (const name of projects) this.knownProjects.add(`${orgId}/${name}`);
      }
    } catch (err) {
      // Rolled back: the parked claims this submission took get nothing and go on waiting.
      for (const { parked } of served) release(parked);
      // Two submissions raced on one idempotency key: the loser returns the winner's job.
      if (options.idempotencyKey !== undefined) {
        const existing = await this.findIdempotent(orgId, options.idempotencyKey);
        if (existing) return { jobs: [existing], created: false };
      }
      throw err;
    }
    this.bus.publishJobs(orgId, "queued", rows.map((r) => [r.id, 0]));
    // Parked claims served by this transaction first: their answers go out before anything else.
    for (const { parked, claims } of served) {
      if (claims.length === 0) {
        release(parked);
        continue;
      }
      this.claimed(orgId, claims, now);
      parked.taken!.deliver(claims);
      parked.wake();
    }
    const handed = served.reduce((n, s) => n + s.claims.length, 0);
    // The workers' answers are what add→start waits for: let them be written before this one.
    if (handed > 0) await new Promise<void>((resolve) => process.nextTick(resolve));
    if (handed < rows.length) this.bus.publish({ kind: "jobs", org: orgId, jobs: subs.length > 64 ? "any" : subs.map((s) => ({ type: s.type, requirements: s.requirements })) });
    // Jobs a parked claim took are answered as they are now: running on that worker.
    const started = new Map(served.flatMap((x) => x.claims.map((c) => [c.row.id, c.row] as const)));
    const jobs = rows.map((r) => jobFromRow(started.get(r.id) ?? r));
    for (const o of this.observers) o.onSubmitted?.(jobs, orgId);
    return { jobs, created: true };
  }

  /**
   * PostgreSQL: the jobs, their projects and their `queued` events in one statement (autocommit,
   * so one round trip), one array parameter per column whatever the batch size: the statement
   * text is the same for every batch and costs nothing to build.
   */
  private async insertJobsPg(orgId: string, rows: JobsTable[], now: number, served: Served[]): Promise<void> {
    const text = JOB_TEXT_COLUMNS.map((k) => pgArray(rows, k, "text"));
    const ints = JOB_INT_COLUMNS.map((k) => pgArray(rows, k, "int8"));
    const floats = JOB_FLOAT_COLUMNS.map((k) => pgArray(rows, k, "float8"));
    const names = sql.join(JOB_COLUMNS.map((k) => sql.ref(k)));
    const projects = [...new Set(rows.map((r) => r.project))];
    // Jobs handed to parked claims (assignParked) start here: their attempts, and a `running`
    // event after the `queued` one (one insert, ordered, so the events' seq keeps that order).
    const handed = served.flatMap((s) => s.claims);
    const leases = handed.map((c) => c.lease.id);
    const jobIds = handed.map((c) => c.row.id);
    const workers = handed.map((c) => c.row.worker_id!);
    const expires = now + this.timing.leaseTtlMs;
    await sql`with j as (insert into jobs (${names}) select * from unnest(${sql.join([...text, ...ints, ...floats])}) returning id),
      p as (insert into projects (org_id, name, created_at) select ${orgId}, name, ${now}::int8 from unnest(${projects}::text[]) as t(name) on conflict (org_id, name) do nothing),
      a as (insert into attempts (id, job_id, org_id, worker_id, attempt, status, created_at, expires_at)
        select l, jid, ${orgId}, w, 1, 'active', ${now}::int8, ${expires}::int8 from unnest(${leases}::text[], ${jobIds}::text[], ${workers}::text[]) as t(l, jid, w))
      insert into job_events (job_id, org_id, ts, type, status, attempt, data)
      select job_id, ${orgId}, ${now}::int8, kind, kind, attempt, data from (
        select id as job_id, 'queued' as kind, 0 as attempt, null::text as data, 0 as k from j
        union all
        select jid, 'running', 1, json_build_object('worker_id', w)::text, 1 from unnest(${jobIds}::text[], ${workers}::text[]) as t(jid, w)
      ) e order by k`.execute(this.db);
  }

  /**
   * New jobs that parked long-polls of this replica can run start at once, inserted already
   * running with their attempts in the submission's own transaction (PostgreSQL: its one
   * statement): add→start costs one commit where a claim adds another, and no wake-up before the
   * claim starts. Each goes to the longest-parked worker that can take it, highest priority
   * first. Jobs already queued are not looked at: a parked worker found none it could run, and a
   * job queued since by anything else (another replica, a retry, an expired lease) woke it.
   */
  private assignParked(orgId: string, rows: JobsTable[], now: number, served: Served[]): void {
    const expiresAt = iso(now + this.timing.leaseTtlMs);
    const byParked = new Map<ParkedClaim, Served>();
    const order = rows.map((r, i) => ({ r, i })).sort((x, y) => y.r.priority - x.r.priority || x.i - y.i);
    for (const { r } of order) {
      if (r.req_gpus !== 0 || r.req_complex !== 0 || r.run_after > now) continue;
      const requirements = json<Requirements>(r.requirements, {});
      for (const p of this.parked) {
        if (p.orgId !== orgId || p.signal?.aborted || (p.taken && !byParked.has(p))) continue;
        const mine = byParked.get(p);
        if (mine && mine.claims.length >= p.maxJobs) continue;
        if (!matchRequirements(p.caps, p.accepts, r.type, requirements).ok) continue;
        let entry = mine;
        if (!entry) {
          take(p);
          entry = { parked: p, claims: [] };
          byParked.set(p, entry);
          served.push(entry);
        }
        Object.assign(r, { status: "running", attempt: 1, lease_id: newId("lease"), worker_id: p.worker.id, started_at: now });
        entry.claims.push({ row: r, lease: { id: r.lease_id!, attempt: 1, expires_at: expiresAt } });
        break;
      }
    }
  }

  private async findIdempotent(orgId: string, key: string): Promise<Job | undefined> {
    const row = await this.db.selectFrom("jobs").selectAll().where("org_id", "=", orgId).where("idempotency_key", "=", key).executeTakeFirst();
    return row ? jobFromRow(row) : undefined;
  }

  // ── reads ──────────────────────────────────────────────────────────────────────────────

  /** A job of the org, or 404 (also for another org's job). */
  async getRow(orgId: string, id: string, db: Db = this.db, lock = false): Promise<JobsTable> {
    const q = db.selectFrom("jobs").selectAll().where("id", "=", id).where("org_id", "=", orgId);
    // Inside a transition, PostgreSQL takes the job's row lock first, so concurrent transitions
    // of one job (finish, lease expiry, cancel, retry) serialise instead of interleaving.
    const row = await (lock && this.backend.dialect === "postgres" ? q.forUpdate() : q).executeTakeFirst();
    if (!row) throw new ForgeError("not_found", `job ${id} not found`);
    return row;
  }

  /** Why a queued job has not been claimed, when no online worker could run it. */
  async waitingReason(row: Pick<JobsTable, "status" | "run_after" | "org_id" | "type" | "requirements">): Promise<string | null> {
    if (row.status !== "queued") return null;
    if (row.run_after > Date.now()) return `retry backoff until ${iso(row.run_after)}`;
    const workers = await this.onlineWorkers(row.org_id);
    if (workers.length === 0) return "no worker is online";
    const reasons: string[] = [];
    for (const w of workers) {
      const m = matchRequirements(json(w.capabilities, {} as Capabilities), json(w.accepts, []), row.type, json(row.requirements, {}));
      if (m.ok) return null;
      reasons.push(`${w.name}: ${m.reason}`);
    }
    return `no online worker can run it (${reasons.slice(0, 5).join("; ")})`;
  }

  private workersCache = new Map<string, { at: number; rows: Promise<WorkersTable[]> }>();

  /** Online workers of an org, cached for a second (read on every submission for waiting_reason). */
  private onlineWorkers(orgId: string): Promise<WorkersTable[]> {
    const hit = this.workersCache.get(orgId);
    if (hit && Date.now() - hit.at < 1000) return hit.rows;
    const rows = this.db.selectFrom("workers").selectAll().where("org_id", "=", orgId).where("status", "=", "online").execute();
    this.workersCache.set(orgId, { at: Date.now(), rows });
    rows.catch(() => this.workersCache.delete(orgId));
    return rows;
  }

  /** Forgets cached worker lists (a worker registered or left). */
  workersChanged(orgId: string): void {
    this.workersCache.delete(orgId);
  }

  // ── claims ─────────────────────────────────────────────────────────────────────────────

  /**
   * Long-poll claim: returns up to `maxJobs` claims, waiting up to `waitMs` for work that this
   * worker can run. Woken by submissions (in-process or NOTIFY), never by polling.
   */
  async claim(orgId: string, worker: WorkersTable, maxJobs: number, waitMs: number, signal?: AbortSignal): Promise<Claim[]> {
    return (await this.claimRows(orgId, worker, maxJobs, waitMs, signal)).map(toClaim);
  }

  /** {@link claim} answering job rows, for callers that serialise them straight to the wire (`claimsJson`). */
  async claimRows(orgId: string, worker: WorkersTable, maxJobs: number, waitMs: number, signal?: AbortSignal): Promise<ClaimedRow[]> {
    const caps = json<Capabilities>(worker.capabilities, { cpus: 1, memory_gb: 0, gpus: [], labels: {} });
    const accepts = json<string[]>(worker.accepts, []);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const waiter = this.bus.waiter(orgId, caps, accepts);
      let claims: ClaimedRow[];
      try {
        claims = await this.tryClaimRows(orgId, worker, caps, accepts, maxJobs);
      } catch (err) {
        waiter.cancel();
        throw err;
      }
      const remaining = deadline - Date.now();
      if (claims.length > 0 || remaining <= 0 || signal?.aborted) {
        waiter.cancel();
        return claims;
      }
      // A job in retry backoff becomes claimable at run_after: wake then, not at the deadline.
      const nextDue = await this.nextRunAfter(orgId);
      const wait = nextDue === undefined ? remaining : Math.max(1, Math.min(remaining, nextDue - Date.now()));
      const parked: ParkedClaim | undefined = (await this.canPark(orgId, caps)) ? { orgId, worker, caps, accepts, maxJobs, signal, wake: waiter.wake } : undefined;
      if (parked) this.parked.add(parked);
      try {
        await waiter.wait(wait, signal);
      } finally {
        if (parked) this.parked.delete(parked);
      }
      // Taken by a submission (possibly just as the wait timed out): its claims are ours.
      if (parked?.taken) {
        const handed = await parked.taken.claims;
        if (handed.length > 0) return handed;
      }
    }
  }

  /** Whether a parked claim of this worker may be served by a submission ({@link assignParked}). */
  private async canPark(orgId: string, caps: Capabilities): Promise<boolean> {
    if (caps.gpus.length > 0 || Object.keys(caps.labels ?? {}).length > 0) return false;
    const org = await this.orgLimits(orgId);
    return org.maxRunning === null && !org.blocked;
  }

  private async nextRunAfter(orgId: string): Promise<number | undefined> {
    const row = await this.db
      .selectFrom("jobs")
      .select((eb) => eb.fn.min("run_after").as("t"))
      .where("org_id", "=", orgId)
      .where("status", "=", "queued")
      .where("run_after", ">", Date.now())
      .executeTakeFirst();
    return row?.t === null || row?.t === undefined ? undefined : Number(row.t);
  }

  /** One claim attempt: a single transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`). */
  async tryClaim(orgId: string, worker: WorkersTable, caps: Capabilities, accepts: string[], maxJobs: number): Promise<Claim[]> {
    return (await this.tryClaimRows(orgId, worker, caps, accepts, maxJobs)).map(toClaim);
  }

  /** {@link tryClaim} answering job rows and leases. */
  async tryClaimRows(orgId: string, worker: WorkersTable, caps: Capabilities, accepts: string[], maxJobs: number): Promise<ClaimedRow[]> {
    const now = Date.now();
    const org = await this.orgLimits(orgId);
    if (org.blocked) return [];
    // A worker without GPUs or labels can only run jobs whose needs are all in indexed columns:
    // those are claimed by one set-based statement (PostgreSQL: a single round trip).
    if (org.maxRunning === null && caps.gpus.length === 0 && Object.keys(caps.labels ?? {}).length === 0) {
      return this.claimSimple(orgId, worker, caps, accepts, maxJobs, now);
    }
    const result = await this.db.transaction().execute(async (trx) => {
      let take = maxJobs;
      if (org.maxRunning !== null) {
        const running = await trx
          .selectFrom("jobs")
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .where("org_id", "=", orgId)
          .where("status", "=", "running")
          .executeTakeFirstOrThrow();
        take = Math.min(take, org.maxRunning - Number(running.n));
        if (take <= 0) return [];
      }
      let freeGpus = caps.gpus.length;
      if (freeGpus > 0) {
        const held = await trx
          .selectFrom("jobs")
          .select((eb) => eb.fn.sum<number>("req_gpus").as("n"))
          .where("worker_id", "=", worker.id)
          .where("status", "=", "running")
          .executeTakeFirst();
        freeGpus -= Number(held?.n ?? 0);
      }
      let q = trx
        .selectFrom("jobs")
        .select(["id", "type", "requirements", "req_complex", "req_gpus", "created_at", "attempt"])
        .where("org_id", "=", orgId)
        .where("status", "=", "queued")
        .where("run_after", "<=", now)
        .where("req_gpus", "<=", Math.max(0, freeGpus))
        .where("req_cpus", "<=", caps.cpus)
        .where("req_memory_gb", "<=", caps.memory_gb);
      if (accepts.length > 0) q = q.where("type", "in", accepts);
      q = q.orderBy("priority", "desc").orderBy("created_at", "asc").orderBy("id", "asc").limit(Math.max(CLAIM_WINDOW, take * 2));
      const candidates = this.backend.dialect === "postgres" ? await q.forUpdate().skipLocked().execute() : await q.execute();
      const chosen: typeof candidates = [];
      for (const c of candidates) {
        if (chosen.length >= take) break;
        if (c.req_gpus > freeGpus) continue;
        if (c.req_complex === 1 && !matchRequirements({ ...caps }, accepts, c.type, json(c.requirements, {})).ok) continue;
        freeGpus -= c.req_gpus;
        chosen.push(c);
      }
      if (chosen.length === 0) return [];
      const expires = now + this.timing.leaseTtlMs;
      const attempts = chosen.map((c) => ({
        id: newId("lease"),
        job_id: c.id,
        org_id: orgId,
        worker_id: worker.id,
        attempt: c.attempt + 1,
        status: "active",
        created_at: now,
        expires_at: expires,
        ended_at: null,
        manifest: null,
        usage: null,
        error: null,
      }));
      await trx.insertInto("attempts").values(attempts).execute();
      for (const a of attempts) {
        await trx
          .updateTable("jobs")
          .set((eb) => ({
            status: "running",
            attempt: a.attempt,
            lease_id: a.id,
            worker_id: worker.id,
            started_at: eb.fn.coalesce("started_at", eb.val(now)),
          }))
          .where("id", "=", a.job_id)
          .execute();
      }
      await trx
        .insertInto("job_events")
        .values(attempts.map((a) => ({ job_id: a.job_id, org_id: orgId, ts: now, type: "running", status: "running", attempt: a.attempt, data: JSON.stringify({ worker_id: worker.id }) })))
        .execute();
      const rows = await trx.selectFrom("jobs").selectAll().where("id", "in", attempts.map((a) => a.job_id)).execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      return attempts.map((a) => ({ attempt: a, row: byId.get(a.job_id)! }));
    });
    const claims = result.map(({ attempt, row }) => ({ row, lease: { id: attempt.id, attempt: attempt.attempt, expires_at: iso(attempt.expires_at) } }));
    this.claimed(orgId, claims, now);
    return claims;
  }

  /** What follows a claim: one bus event per batch, and the observers. */
  private claimed(orgId: string, claims: ClaimedRow[], now: number): void {
    if (claims.length === 0) return;
    this.bus.publishJobs(orgId, "running", claims.map((c) => [c.row.id, c.lease.attempt]));
    const latency = claims.map(({ row }) => now - Math.max(row.created_at, row.run_after));
    for (const o of this.observers) o.onClaimed?.(claims.map((c) => c.row.id), latency);
  }

  /** The set-based claim of {@link tryClaim} for workers without GPUs or labels. */
  private async claimSimple(orgId: string, worker: WorkersTable, caps: Capabilities, accepts: string[], take: number, now: number): Promise<ClaimedRow[]> {
    const expires = now + this.timing.leaseTtlMs;
    const data = JSON.stringify({ worker_id: worker.id });
    const types = accepts.length > 0 ? sql`and type in (${sql.join(accepts)})` : sql``;
    const pick = sql`select id from jobs
      where org_id = ${orgId} and status = 'queued' and run_after <= ${now} and req_gpus = 0 and req_complex = 0
        and req_cpus <= ${caps.cpus} and req_memory_gb <= ${caps.memory_gb} ${types}
      order by priority desc, created_at asc, id asc limit ${take}`;
    let rows: JobsTable[];
    if (this.backend.dialect === "postgres") {
      // One statement: lock the next jobs (skipping rows other claimers hold), start them, and
      // record their attempts and events. Autocommit, so a single round trip per claim.
      const res = await sql<JobsTable>`
        with picked as (${pick} for update skip locked),
        claimed as (
          update jobs j set status = 'running', attempt = j.attempt + 1, lease_id = 'lease_' || replace(gen_random_uuid()::text, '-', ''),
            worker_id = ${worker.id}, started_at = coalesce(j.started_at, ${now}::bigint)
          from picked where j.id = picked.id
          returning j.*
        ),
        attempts_in as (
          insert into attempts (id, job_id, org_id, worker_id, attempt, status, created_at, expires_at)
          select lease_id, id, org_id, worker_id, attempt, 'active', ${now}::bigint, ${expires}::bigint from claimed
        ),
        events_in as (
          insert into job_events (job_id, org_id, ts, type, status, attempt, data)
          select id, org_id, ${now}::bigint, 'running', 'running', attempt, ${data}::text from claimed
        )
        select * from claimed`.execute(this.db);
      rows = res.rows;
    } else {
      rows = await this.db.transaction().execute(async (trx) => {
        // The ids first, then the update by id: `update … where id in (select … limit n) returning *`
        // cost 4× as much here (SQLite builds a Bloom filter for the subquery on every claim).
        const picked = (await sql<{ id: string }>`${pick}`.execute(trx)).rows;
        if (picked.length === 0) return [];
        const res = await sql<JobsTable>`
          update jobs set status = 'running', attempt = attempt + 1, lease_id = 'lease_' || lower(hex(randomblob(16))),
            worker_id = ${worker.id}, started_at = coalesce(started_at, ${now})
          where id in (select value from json_each(${JSON.stringify(picked.map((p) => p.id))}))
          returning *`.execute(trx);
        const claimed = res.rows;
        await insertRows(trx, "attempts", ATTEMPT_COLUMNS, claimed.map((r) => ({ id: r.lease_id!, job_id: r.id, org_id: orgId, worker_id: worker.id, attempt: r.attempt, status: "active", created_at: now, expires_at: expires, ended_at: null, manifest: null, usage: null, error: null })));
        await insertRows(trx, "job_events", EVENT_COLUMNS, claimed.map((r) => ({ job_id: r.id, org_id: orgId, ts: now, type: "running", status: "running", attempt: r.attempt, data })));
        return claimed;
      });
    }
    if (rows.length === 0) return [];
    rows.sort((a, b) => b.priority - a.priority || a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
    const expiresAt = iso(expires);
    const claims = rows.map((row) => ({ row, lease: { id: row.lease_id!, attempt: row.attempt, expires_at: expiresAt } }));
    this.claimed(orgId, claims, now);
    return claims;
  }

  private orgCache = new Map<string, { at: number; maxRunning: number | null; blocked: boolean }>();

  /** Per-org concurrency limit and budget, cached for a second (checked at claim time). */
  private async orgLimits(orgId: string): Promise<{ maxRunning: number | null; blocked: boolean }> {
    const hit = this.orgCache.get(orgId);
    if (hit && Date.now() - hit.at < 1000) return hit;
    const org = await this.db.selectFrom("orgs").select(["max_running", "budget_usd"]).where("id", "=", orgId).executeTakeFirst();
    let blocked = false;
    if (org?.budget_usd !== null && org?.budget_usd !== undefined) {
      const spent = await this.db
        .selectFrom("usage_records")
        .select((eb) => eb.fn.sum<number>("cost_usd").as("c"))
        .where("org_id", "=", orgId)
        .executeTakeFirst();
      blocked = Number(spent?.c ?? 0) >= org.budget_usd;
    }
    const v = { at: Date.now(), maxRunning: org?.max_running ?? null, blocked };
    this.orgCache.set(orgId, v);
    return v;
  }

  // ── leases ─────────────────────────────────────────────────────────────────────────────

  /** The live attempt behind a lease, or `lease_lost`. */
  private async liveAttempt(db: Db, orgId: string, leaseId: string, now = Date.now()) {
    const a = await db.selectFrom("attempts").selectAll().where("id", "=", leaseId).where("org_id", "=", orgId).executeTakeFirst();
    if (!a) throw new ForgeError("not_found", `lease ${leaseId} not found`);
    if (a.status !== "active" || a.expires_at < now) {
      throw new ForgeError("lease_lost", `lease ${leaseId} is no longer held (attempt ${a.attempt} is ${a.status === "active" ? "expired" : a.status})`);
    }
    return a;
  }

  /** Extends a lease; answers whether the job has been asked to cancel. */
  async heartbeat(orgId: string, leaseId: string): Promise<{ expires_at: string; cancel_requested: boolean }> {
    const now = Date.now();
    const expires = now + this.timing.leaseTtlMs;
    const a = await this.db
      .updateTable("attempts")
      .set({ expires_at: expires })
      .where("id", "=", leaseId)
      .where("org_id", "=", orgId)
      .where("status", "=", "active")
      .where("expires_at", ">=", now)
      .returning(["job_id", "worker_id"])
      .executeTakeFirst();
    if (!a) {
      await this.liveAttempt(this.db, orgId, leaseId, now); // throws the precise error
      throw new ForgeError("lease_lost", `lease ${leaseId} is no longer held`);
    }
    const job = await this.db.selectFrom("jobs").select(["cancel_requested"]).where("id", "=", a.job_id).executeTakeFirstOrThrow();
    await this.touchWorker(a.worker_id, now);
    return { expires_at: iso(expires), cancel_requested: job.cancel_requested === 1 };
  }

  private lastTouch = new Map<string, number>();

  /** Records that a worker is alive, at most once a second per worker. */
  async touchWorker(workerId: string, now = Date.now()): Promise<void> {
    if (now - (this.lastTouch.get(workerId) ?? 0) < 1000) return;
    this.lastTouch.set(workerId, now);
    await this.db.updateTable("workers").set({ last_seen_at: now, status: "online" }).where("id", "=", workerId).where("status", "=", "online").execute();
  }

  /** Appends log lines under a live lease. */
  async appendLogs(orgId: string, leaseId: string, batch: LogBatch): Promise<number> {
    if (batch.lines.length === 0) return 0;
    const now = Date.now();
    const jobId = await this.db.transaction().execute(async (trx) => {
      const a = await this.liveAttempt(trx, orgId, leaseId, now);
      const job = await trx.selectFrom("jobs").select(["log_seq"]).where("id", "=", a.job_id).executeTakeFirstOrThrow();
      const rows = batch.lines.map((l, i) => ({
        job_id: a.job_id,
        seq: job.log_seq + i + 1,
        attempt: a.attempt,
        ts: l.ts !== undefined ? Date.parse(l.ts) || now : now,
        stream: l.stream,
        line: l.line,
      }));
      for (let i = 0; i < rows.length; i += 500) await trx.insertInto("job_logs").values(rows.slice(i, i + 500)).execute();
      await trx.updateTable("jobs").set({ log_seq: job.log_seq + rows.length }).where("id", "=", a.job_id).execute();
      return a.job_id;
    });
    this.bus.publish({ kind: "logs", org: orgId, job: jobId });
    return batch.lines.length;
  }

  /** Appends metric points under a live lease. */
  async appendMetrics(orgId: string, leaseId: string, batch: MetricBatch): Promise<number> {
    if (batch.points.length === 0) return 0;
    const now = Date.now();
    await this.db.transaction().execute(async (trx) => {
      const a = await this.liveAttempt(trx, orgId, leaseId, now);
      const rows = batch.points.map((p) => ({ job_id: a.job_id, name: p.name, step: p.step, value: p.value, ts: p.ts !== undefined ? Date.parse(p.ts) || now : now }));
      for (let i = 0; i < rows.length; i += 500) await trx.insertInto("job_metrics").values(rows.slice(i, i + 500)).execute();
    });
    return batch.points.length;
  }

  /** Finishes an attempt successfully. A stale lease gets `lease_lost` and changes nothing. */
  async complete(orgId: string, leaseId: string, body: CompleteRequest): Promise<Job> {
    return this.finish(orgId, leaseId, "succeeded", {
      outputs: body.outputs,
      usage: body.usage,
      manifest: body.manifest,
      error: null,
    });
  }

  /**
   * Finishes many attempts successfully in one transaction, each on its own: a stale or unknown
   * lease gets the error a single complete would have answered, and the others still succeed.
   * Set-based statements on PostgreSQL, so a batch costs a handful of round trips.
   */
  async completeMany(orgId: string, items: BatchCompleteItem[]): Promise<BatchCompleteResult[]> {
    const now = Date.now();
    const prices = this.prices();
    const leaseIds = [...new Set(items.map((i) => i.lease_id))];
    const pg = this.backend.dialect === "postgres";
    const { results, done } = await this.db.transaction().execute(async (trx) => {
      const attempts = await trx.selectFrom("attempts").selectAll().where("org_id", "=", orgId).where("id", "in", leaseIds).execute();
      const byLease = new Map(attempts.map((a) => [a.id, a]));
      const jobIds = [...new Set(attempts.map((a) => a.job_id))].sort();
      let jq = trx.selectFrom("jobs").selectAll().where("id", "in", jobIds.length > 0 ? jobIds : [""]).orderBy("id");
      if (pg) jq = jq.forUpdate();
      const jobs = new Map((await jq.execute()).map((j) => [j.id, j]));
      const results: BatchCompleteResult[] = [];
      const done: { row: JobsTable; attempt: (typeof attempts)[number]; usage: Usage; manifest: string | null; outputs: string }[] = [];
      const taken = new Set<string>();
      for (const item of items) {
        const a = byLease.get(item.lease_id);
        if (!a) {
          results.push({ lease_id: item.lease_id, error: { code: "not_found", message: `lease ${item.lease_id} not found` } });
          continue;
        }
        const job = jobs.get(a.job_id);
        if (taken.has(a.id) || a.status !== "active" || a.expires_at < now || !job || job.lease_id !== a.id || job.status !== "running") {
          results.push({ lease_id: a.id, job_id: a.job_id, error: { code: "lease_lost", message: `lease ${a.id} is no longer held` } });
          continue;
        }
        taken.add(a.id);
        const usage = addUsage(zeroUsage(), { ...item.usage, cost_usd: 0 });
        if (usage.wall_s === 0) usage.wall_s = (now - a.created_at) / 1000;
        usage.cost_usd = costOf(usage, prices);
        const total = addUsage(json(job.usage, zeroUsage()), usage);
        const outputs = JSON.stringify(item.outputs ?? {});
        const row: JobsTable = { ...job, status: "succeeded", lease_id: null, finished_at: now, usage: JSON.stringify(total), outputs, error: null };
        done.push({ row, attempt: a, usage, manifest: item.manifest === undefined ? null : JSON.stringify(item.manifest), outputs });
        results.push({ lease_id: a.id, job_id: job.id, status: "succeeded" });
      }
      for (let i = 0; i < done.length; i += 500) {
        const chunk = done.slice(i, i + 500);
        // Set-based writes over the chunk as one set of rows `v`, passed as column arrays
        // (PostgreSQL) or one JSON array (SQLite): the statement text is the same for every
        // batch, so nothing is built per row and the prepared statement is reused. On PostgreSQL
        // all four writes are one statement (data-modifying CTEs), so one round trip; the job
        // rows are locked above, so these attempts cannot have changed since they were read.
        const rows = chunk.map((d) => {
          const u = d.usage;
          return {
            lease_id: d.attempt.id,
            job_id: d.row.id,
            manifest: d.manifest,
            att_usage: JSON.stringify(u),
            job_usage: d.row.usage,
            outputs: d.outputs,
            use_id: newId("use"),
            attempt: d.attempt.attempt,
            project: d.row.project,
            type: d.row.type,
            wall_s: u.wall_s,
            cpu_s: u.cpu_s,
            gpu_s: Object.values(u.gpu_s).reduce((x, y) => x + y, 0),
            gpu_detail: JSON.stringify(u.gpu_s),
            tokens_in: u.tokens_in,
            tokens_out: u.tokens_out,
            cost_usd: u.cost_usd,
          };
        });
        if (pg) {
          const arr = (k: (typeof COMPLETE_COLUMNS)[number], type: PgArrayType) => pgArray(rows, k, type);
          const v = sql`select * from unnest(${sql.join([
            arr("lease_id", "text"), arr("job_id", "text"), arr("manifest", "text"), arr("att_usage", "text"), arr("job_usage", "text"),
            arr("outputs", "text"), arr("use_id", "text"), arr("attempt", "int8"), arr("project", "text"), arr("type", "text"),
            arr("wall_s", "float8"), arr("cpu_s", "float8"), arr("gpu_s", "float8"), arr("gpu_detail", "text"),
            arr("tokens_in", "int8"), arr("tokens_out", "int8"), arr("cost_usd", "float8"),
          ])}) as t(${sql.raw(COMPLETE_COLUMNS.join(", "))})`;
          await sql`with v as (${v}),
            a as (update attempts set status = 'succeeded', ended_at = ${now}, manifest = v.manifest, usage = v.att_usage, error = null
                  from v where attempts.id = v.lease_id and attempts.status = 'active'),
            j as (update jobs set status = 'succeeded', lease_id = null, finished_at = ${now}, usage = v.job_usage, outputs = v.outputs, error = null
                  from v where jobs.id = v.job_id),
            u as (insert into usage_records (id, org_id, job_id, attempt, project, type, ts, wall_s, cpu_s, gpu_s, gpu_detail, tokens_in, tokens_out, cost_usd)
                  select use_id, ${orgId}, job_id, attempt::int, project, type, ${now}::bigint, wall_s, cpu_s, gpu_s, gpu_detail, tokens_in, tokens_out, cost_usd from v)
            insert into job_events (job_id, org_id, ts, type, status, attempt, data)
            select job_id, ${orgId}, ${now}::bigint, 'succeeded', 'succeeded', attempt::int, null from v`.execute(trx);
        } else {
          // SQLite has no data-modifying CTEs: four statements, all in-process, over bound values.
          // (One JSON parameter read through json_each cost twice as much: every `value ->> 'col'`
          // parses the row's JSON text again, 14 times a row for the usage record.)
          await updateFromValues(trx, ["lease_id", "manifest", "att_usage"], rows,
            `update attempts set status = 'succeeded', ended_at = ?, manifest = v.manifest, usage = v.att_usage, error = null
            from v where attempts.id = v.lease_id and attempts.status = 'active'`, [now]);
          await updateFromValues(trx, ["job_id", "job_usage", "outputs"], rows,
            `update jobs set status = 'succeeded', lease_id = null, finished_at = ?, usage = v.job_usage, outputs = v.outputs, error = null
            from v where jobs.id = v.job_id`, [now]);
          await insertRows(trx, "usage_records", USAGE_COLUMNS, rows.map((r) => ({ id: r.use_id, org_id: orgId, job_id: r.job_id, attempt: r.attempt, project: r.project, type: r.type, ts: now, wall_s: r.wall_s, cpu_s: r.cpu_s, gpu_s: r.gpu_s, gpu_detail: r.gpu_detail, tokens_in: r.tokens_in, tokens_out: r.tokens_out, cost_usd: r.cost_usd })));
          await insertRows(trx, "job_events", EVENT_COLUMNS, rows.map((r) => ({ job_id: r.job_id, org_id: orgId, ts: now, type: "succeeded", status: "succeeded", attempt: r.attempt, data: null })));
        }
      }
      return { results, done };
    });
    this.afterTransitions(orgId, done.map((d) => d.row), false);
    return results;
  }

  /** Finishes an attempt with an error; the retry budgets decide what happens next. */
  async fail(orgId: string, leaseId: string, body: FailRequest): Promise<Job> {
    return this.finish(orgId, leaseId, "failed", body);
  }

  private async finish(
    orgId: string,
    leaseId: string,
    outcome: "succeeded" | "failed",
    body: { outputs?: CompleteRequest["outputs"]; usage?: Partial<Usage> | undefined; manifest?: unknown; error: FailRequest["error"] | null; retryable?: boolean; kind?: FailRequest["kind"] },
  ): Promise<Job> {
    const now = Date.now();
    const prices = this.prices();
    const { row, requeued } = await this.db.transaction().execute(async (trx) => {
      const a = await this.liveAttempt(trx, orgId, leaseId, now);
      const job = await this.getRow(orgId, a.job_id, trx, true);
      if (job.lease_id !== a.id || job.status !== "running") throw new ForgeError("lease_lost", `lease ${leaseId} is no longer the job's current lease`);
      const attemptUsage = addUsage(zeroUsage(), { ...body.usage, cost_usd: 0 });
      if (attemptUsage.wall_s === 0) attemptUsage.wall_s = (now - a.created_at) / 1000;
      attemptUsage.cost_usd = costOf(attemptUsage, prices);
      const total = addUsage(json(job.usage, zeroUsage()), attemptUsage);
      let status: JobStatus = outcome;
      let runAfter = job.run_after;
      let failures = job.failures;
      let attemptStatus: string = outcome;
      if (outcome === "failed") {
        const decision = job.cancel_requested === 1 ? ({ action: "cancel" } as const) : decideFailure(body.kind ?? "error", body.retryable ?? true, job.failures, json(job.retry, RetryPolicy.parse({})));
        if (body.kind === "preempted") attemptStatus = "preempted";
        switch (decision.action) {
          case "requeue":
            status = "queued";
            runAfter = now + decision.delayMs;
            if (decision.spendsFailureBudget) failures += 1;
            break;
          case "fail":
            status = "failed";
            if ((body.kind ?? "error") === "error") failures += 1;
            break;
          case "cancel":
            status = "canceled";
            break;
        }
      }
      // Compare-and-set: only a still-active attempt ends here (a lease expiry that committed
      // first wins, and this answers lease_lost).
      const ended = await trx
        .updateTable("attempts")
        .set({
          status: attemptStatus,
          ended_at: now,
          manifest: body.manifest === undefined ? null : JSON.stringify(body.manifest),
          usage: JSON.stringify(attemptUsage),
          error: body.error === null ? null : JSON.stringify(body.error),
        })
        .where("id", "=", a.id)
        .where("status", "=", "active")
        .executeTakeFirst();
      if (Number(ended.numUpdatedRows) === 0) throw new ForgeError("lease_lost", `lease ${leaseId} is no longer held`);
      const terminal = isTerminal(status);
      const keepOutputs = body.outputs !== undefined && Object.keys(body.outputs).length > 0;
      // One set of changes, written and returned as the job's new row.
      const changes = {
        status,
        lease_id: null,
        worker_id: terminal ? job.worker_id : null,
        finished_at: terminal ? now : null,
        run_after: runAfter,
        failures,
        usage: JSON.stringify(total),
        error: body.error === null ? null : JSON.stringify(body.error),
        ...(keepOutputs || outcome === "succeeded" ? { outputs: JSON.stringify(body.outputs ?? {}) } : {}),
      };
      await trx.updateTable("jobs").set(changes).where("id", "=", job.id).execute();
      await trx
        .insertInto("usage_records")
        .values({
          id: newId("use"),
          org_id: orgId,
          job_id: job.id,
          attempt: a.attempt,
          project: job.project,
          type: job.type,
          ts: now,
          wall_s: attemptUsage.wall_s,
          cpu_s: attemptUsage.cpu_s,
          gpu_s: Object.values(attemptUsage.gpu_s).reduce((x, y) => x + y, 0),
          gpu_detail: JSON.stringify(attemptUsage.gpu_s),
          tokens_in: attemptUsage.tokens_in,
          tokens_out: attemptUsage.tokens_out,
          cost_usd: attemptUsage.cost_usd,
        })
        .execute();
      const evType = status === "queued" ? (body.kind === "preempted" ? "preempted" : "retrying") : status;
      await trx
        .insertInto("job_events")
        .values({ job_id: job.id, org_id: orgId, ts: now, type: evType, status, attempt: a.attempt, data: body.error === null ? null : JSON.stringify({ error: body.error }) })
        .execute();
      const updated: JobsTable = { ...job, ...changes };
      return { row: updated, requeued: status === "queued" };
    });
    this.afterTransition(orgId, row, requeued);
    return jobFromRow(row);
  }

  private afterTransition(orgId: string, row: JobsTable, requeued: boolean): void {
    this.afterTransitions(orgId, [row], requeued);
  }

  /** Bus events and observers after jobs changed state (all requeued, or none): one event per batch. */
  private afterTransitions(orgId: string, rows: JobsTable[], requeued: boolean): void {
    if (rows.length === 0) return;
    const byStatus = new Map<string, [string, number][]>();
    for (const r of rows) {
      const list = byStatus.get(r.status);
      if (list) list.push([r.id, r.attempt]);
      else byStatus.set(r.status, [[r.id, r.attempt]]);
    }
    for (const [status, jobs] of byStatus) this.bus.publishJobs(orgId, status, jobs);
    if (requeued) this.bus.publish({ kind: "jobs", org: orgId, jobs: rows.length > 64 ? "any" : rows.map((r) => ({ type: r.type as Job["type"], requirements: json(r.requirements, {}) })) });
    // A slot under the org's concurrency limit, or GPUs on a worker, just came free: a claim
    // parked for them must not wait for its long-poll to time out.
    else if (this.orgCache.get(orgId)?.maxRunning != null || rows.some((r) => r.req_gpus > 0)) this.bus.publish({ kind: "jobs", org: orgId, jobs: "any" });
    if (!this.observers.some((o) => o.onJobFinished !== undefined)) return;
    for (const row of rows) {
      if (!isTerminal(row.status as JobStatus)) continue;
      const job = jobFromRow(row);
      for (const o of this.observers) o.onJobFinished?.(job, orgId);
    }
  }

  // ── cancel and retry ───────────────────────────────────────────────────────────────────

  /** Cancels a queued job at once; asks a running one to stop (its worker sees it on heartbeat). */
  async cancel(orgId: string, id: string): Promise<Job> {
    const now = Date.now();
    const row = await this.db.transaction().execute(async (trx) => {
      const job = await this.getRow(orgId, id, trx, true);
      if (isTerminal(job.status as JobStatus)) throw new ForgeError("conflict", `job ${id} is already ${job.status}`);
      if (job.status === "queued") {
        await trx.updateTable("jobs").set({ status: "canceled", finished_at: now, cancel_requested: 1 }).where("id", "=", id).execute();
        await trx.insertInto("job_events").values({ job_id: id, org_id: orgId, ts: now, type: "canceled", status: "canceled", attempt: job.attempt, data: null }).execute();
      } else {
        await trx.updateTable("jobs").set({ cancel_requested: 1 }).where("id", "=", id).execute();
        await trx
          .insertInto("job_events")
          .values({ job_id: id, org_id: orgId, ts: now, type: "cancel_requested", status: "running", attempt: job.attempt, data: null })
          .execute();
      }
      return trx.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    });
    if (row.status === "canceled") this.afterTransition(orgId, row, false);
    else this.bus.publish({ kind: "job", org: orgId, job: row.id, status: row.status, attempt: row.attempt });
    return jobFromRow(row);
  }

  /** Puts failed or canceled jobs back in the queue with a fresh failure budget. */
  async retry(orgId: string, ids: string[]): Promise<Job[]> {
    const now = Date.now();
    const rows = await this.db.transaction().execute(async (trx) => {
      const out: JobsTable[] = [];
      for (const id of ids) {
        const job = await this.getRow(orgId, id, trx, true);
        if (job.status !== "failed" && job.status !== "canceled") {
          if (ids.length === 1) throw new ForgeError("conflict", `job ${id} is ${job.status}; only failed or canceled jobs can be retried`);
          continue;
        }
        await trx
          .updateTable("jobs")
          .set({ status: "queued", failures: 0, finished_at: null, error: null, run_after: now, cancel_requested: 0, worker_id: null })
          .where("id", "=", id)
          .execute();
        await trx.insertInto("job_events").values({ job_id: id, org_id: orgId, ts: now, type: "queued", status: "queued", attempt: job.attempt, data: JSON.stringify({ retry: true }) }).execute();
        out.push(await trx.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirstOrThrow());
      }
      return out;
    });
    if (rows.length > 0) {
      this.bus.publish({ kind: "jobs", org: orgId, jobs: rows.length > 64 ? "any" : rows.map((r) => ({ type: r.type as Job["type"], requirements: json(r.requirements, {}) })) });
      this.bus.publishJobs(orgId, "queued", rows.map((r) => [r.id, r.attempt]));
    }
    return rows.map((r) => jobFromRow(r));
  }

  // ── lost leases ────────────────────────────────────────────────────────────────────────

  /**
   * Expires leases past their TTL (and, with `workerId`, every live lease of that worker):
   * their jobs go back to the queue on the preemption budget, or end canceled if a cancel was
   * asked. Returns how many leases were ended.
   */
  async loseLeases(filter: { expiredBefore?: number; workerIds?: string[] }, reason: "expired" | "lost"): Promise<number> {
    let q = this.db.selectFrom("attempts").select(["id"]).where("status", "=", "active");
    if (filter.expiredBefore !== undefined) q = q.where("expires_at", "<", filter.expiredBefore);
    if (filter.workerIds !== undefined) {
      if (filter.workerIds.length === 0) return 0;
      q = q.where("worker_id", "in", filter.workerIds);
      for (const o of this.observers) o.onWorkersLost?.(filter.workerIds);
    }
    const stale = await q.limit(1000).execute();
    let n = 0;
    for (const { id } of stale) {
      const now = Date.now();
      const done = await this.db.transaction().execute(async (trx) => {
        const a0 = await trx.selectFrom("attempts").select(["job_id", "org_id"]).where("id", "=", id).where("status", "=", "active").executeTakeFirst();
        if (!a0) return undefined;
        // Job row lock first (the order every transition uses), then re-read the attempt.
        const job = await this.getRow(a0.org_id, a0.job_id, trx, true);
        const a = await trx.selectFrom("attempts").selectAll().where("id", "=", id).where("status", "=", "active").executeTakeFirst();
        if (!a) return undefined;
        if (filter.expiredBefore !== undefined && a.expires_at >= filter.expiredBefore) return undefined; // heartbeat won the race
        const ended = await trx.updateTable("attempts").set({ status: reason, ended_at: now }).where("id", "=", id).where("status", "=", "active").executeTakeFirst();
        if (Number(ended.numUpdatedRows) === 0) return undefined;
        if (job.lease_id !== a.id || job.status !== "running") return undefined;
        const status: JobStatus = job.cancel_requested === 1 ? "canceled" : "queued";
        await trx
          .updateTable("jobs")
          .set({ status, lease_id: null, worker_id: null, run_after: now, finished_at: status === "canceled" ? now : null })
          .where("id", "=", job.id)
          .execute();
        await trx
          .insertInto("job_events")
          .values({ job_id: job.id, org_id: job.org_id, ts: now, type: status === "queued" ? `lease_${reason}` : "canceled", status, attempt: a.attempt, data: JSON.stringify({ worker_id: a.worker_id }) })
          .execute();
        return trx.selectFrom("jobs").selectAll().where("id", "=", job.id).executeTakeFirstOrThrow();
      });
      if (done) {
        n++;
        this.afterTransition(done.org_id, done, done.status === "queued");
      }
    }
    return n;
  }

  /** Marks workers not seen for `olderThanMs` offline. */
  async markStaleWorkers(olderThanMs: number): Promise<void> {
    const lost = await this.db.updateTable("workers").set({ status: "offline" }).where("status", "=", "online").where("last_seen_at", "<", Date.now() - olderThanMs).returning("id").execute();
    if (lost.length > 0) for (const o of this.observers) o.onWorkersLost?.(lost.map((w) => w.id));
  }
}

/** Marks a parked claim as this submission's (synchronously, so no other submission serves it too). */
function take(parked: ParkedClaim): void {
  let deliver!: (claims: ClaimedRow[]) => void;
  parked.taken = { claims: new Promise((resolve) => (deliver = resolve)), deliver };
}

/** A parked claim a submission took but could not serve: it goes on waiting, and later submissions may serve it. */
function release(parked: ParkedClaim): void {
  parked.taken!.deliver([]);
  parked.taken = undefined;
}

function toClaim(c: ClaimedRow): Claim {
  return { lease: c.lease, job: jobFromRow(c.row) };
}
