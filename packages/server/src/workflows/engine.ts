import { createHash } from "node:crypto";
import {
  evaluate,
  expandMatrix,
  ExpressionError,
  ForgeError,
  isTerminal,
  JobSpecs,
  JobSubmission,
  needsOf,
  parseExpression,
  parseWorkflow,
  resolveInputs,
  substitute,
  truthy,
  WorkflowError,
  type ExprContext,
  type Job,
  type JobStatus,
  type ParsedWorkflow,
  type WorkflowRun,
  type WorkflowSpec,
  type WorkflowStepRecord,
} from "@nexa/core";
import type { Kysely } from "kysely";
import { newId } from "../ids.js";
import { preflightFailed, preflightSubmission, recordPreflight, type PreflightDeps } from "../preflight.js";
import type { Queue } from "../queue.js";
import { iso, json } from "../rows.js";
import type { Database } from "../store/index.js";
import type { WorkflowRunsTable, WorkflowStepsTable } from "../store/schema.js";

type StepRow = WorkflowStepsTable;

/** Values per `IN (…)` list and rows per multi-row insert: well under SQLite's 32,766 bound parameters. */
const IN_CHUNK = 500;
const INSERT_CHUNK = 200;

/** A step's state folded over its matrix instances. */
interface StepState {
  status: JobStatus | "pending";
  skipped: boolean;
  outputs: Record<string, unknown>;
  rows: StepRow[];
}

/** Canonical JSON: object keys sorted, so equal specs hash equally. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * The workflow engine: event-driven, in the control plane. A step is scheduled the moment its
 * last dependency finishes (the queue's finish hook, no polling); identical steps — same type,
 * resolved spec (which carries input digests) and cache version — are run once and reused.
 * Every decision is persisted, so a restarted server picks up where it was.
 */
export class WorkflowEngine {
  private readonly chains = new Map<string, Promise<void>>();
  private readonly parsed = new Map<string, ParsedWorkflow>();
  /** Resolves when every scheduled advance has settled (tests, shutdown). */
  private pending = new Set<Promise<void>>();
  private stopped = false;

  /**
   * @param preflight what the preflight of `train` steps reads (the control plane's store, blobs and
   *   prices); a step whose preflight fails fails with its message instead of queueing. Absent: no preflight.
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly queue: Queue,
    private readonly preflight?: PreflightDeps,
  ) {
    queue.observers.push({ onJobFinished: (job, orgId) => this.track(this.onJobFinished(job, orgId)) });
  }

  /** Re-syncs every unfinished run after a restart: finished jobs whose event was missed are applied. */
  async recover(): Promise<void> {
    const runs = await this.db.selectFrom("workflow_runs").select(["id", "org_id"]).where("status", "in", ["queued", "running"]).execute();
    for (const r of runs) {
      const open = await this.db
        .selectFrom("workflow_steps")
        .innerJoin("jobs", "jobs.id", "workflow_steps.job_id")
        .selectAll("jobs")
        .where("workflow_steps.run_id", "=", r.id)
        .where("workflow_steps.status", "in", ["queued", "running"])
        .execute();
      for (const j of open) if (isTerminal(j.status as JobStatus)) await this.applyJob(j.id, j.status as JobStatus, json(j.outputs, {}), json<{ message?: string } | null>(j.error, null)?.message ?? null);
      await this.advance(r.id);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.pending]);
  }

  /** Waits for scheduled work to settle. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track(p: Promise<void>): void {
    const t = p.catch(() => {}).finally(() => this.pending.delete(t));
    this.pending.add(t);
  }

  // ── API ───────────────────────────────────────────────────────────────────────────────

  /** Starts a run (optionally resuming another: its succeeded steps are reused). */
  async create(orgId: string, req: { workflow: string | Record<string, unknown>; inputs: Record<string, unknown>; resume_from?: string; no_cache: boolean }): Promise<WorkflowRun> {
    let parsed: ParsedWorkflow;
    let inputs: Record<string, unknown>;
    try {
      parsed = parseWorkflow(req.workflow);
      inputs = resolveInputs(parsed.spec, req.inputs);
    } catch (err) {
      if (err instanceof WorkflowError) throw new ForgeError("invalid_request", `invalid workflow:\n${err.message}`, { details: err.issues });
      throw err;
    }
    const now = Date.now();
    const run: WorkflowRunsTable = {
      id: newId("wfr"),
      org_id: orgId,
      name: parsed.spec.name,
      status: "running",
      spec: JSON.stringify(parsed.spec),
      inputs: JSON.stringify(inputs),
      outputs: "{}",
      resume_from: req.resume_from ?? null,
      no_cache: req.no_cache ? 1 : 0,
      failing: 0,
      error: null,
      created_at: now,
      finished_at: null,
    };
    const reused: StepRow[] = [];
    if (req.resume_from !== undefined) {
      const old = await this.db.selectFrom("workflow_runs").selectAll().where("id", "=", req.resume_from).where("org_id", "=", orgId).executeTakeFirst();
      if (!old) throw new ForgeError("not_found", `workflow run ${req.resume_from} not found`);
      const oldRows = await this.db.selectFrom("workflow_steps").selectAll().where("run_id", "=", old.id).execute();
      const byStep = groupRows(oldRows);
      for (const [step, rows] of byStep) {
        if (!parsed.spec.steps[step]) continue;
        if (rows.length > 0 && rows.every((r) => r.status === "succeeded" && r.skipped === 0)) {
          for (const r of rows) reused.push({ ...r, run_id: run.id, reused: 1, created_at: now });
        }
      }
    }
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto("workflow_runs").values(run).execute();
      if (reused.length > 0) await trx.insertInto("workflow_steps").values(reused).execute();
    });
    this.parsed.set(run.id, parsed);
    await this.advance(run.id);
    return this.get(orgId, run.id);
  }

  /** Reads a run with its steps. */
  async get(orgId: string, id: string): Promise<WorkflowRun> {
    const run = await this.db.selectFrom("workflow_runs").selectAll().where("id", "=", id).where("org_id", "=", orgId).executeTakeFirst();
    if (!run) throw new ForgeError("not_found", `workflow run ${id} not found`);
    return this.render(run);
  }

  /** Lists runs, newest first. */
  async list(orgId: string, q: { status?: string | undefined; name?: string | undefined; limit: number; cursor?: string | undefined }): Promise<{ items: WorkflowRun[]; next_cursor: string | null }> {
    let query = this.db.selectFrom("workflow_runs").selectAll().where("org_id", "=", orgId);
    if (q.status) query = query.where("status", "=", q.status);
    if (q.name) query = query.where("name", "=", q.name);
    if (q.cursor) query = query.where("id", "<", q.cursor);
    const rows = await query.orderBy("id", "desc").limit(q.limit + 1).execute();
    const page = rows.slice(0, q.limit);
    return { items: await Promise.all(page.map((r) => this.render(r))), next_cursor: rows.length > q.limit ? page.at(-1)!.id : null };
  }

  /** Cancels a run: unstarted steps are canceled, running jobs are asked to stop. */
  async cancel(orgId: string, id: string): Promise<WorkflowRun> {
    const run = await this.db.selectFrom("workflow_runs").selectAll().where("id", "=", id).where("org_id", "=", orgId).executeTakeFirst();
    if (!run) throw new ForgeError("not_found", `workflow run ${id} not found`);
    if (isTerminal(run.status as JobStatus)) throw new ForgeError("conflict", `workflow run ${id} is already ${run.status}`);
    await this.db.updateTable("workflow_runs").set({ status: "canceled", failing: 1, finished_at: Date.now() }).where("id", "=", id).execute();
    await this.stopRunning(orgId, id);
    await this.advance(id);
    return this.get(orgId, id);
  }

  // ── scheduling ────────────────────────────────────────────────────────────────────────

  private async onJobFinished(job: Job, _orgId: string): Promise<void> {
    // Only the engine submits jobs with a run id, and every step row (a twin's too) points at one
    // of those: a plain job has no step to update, so it costs no statement here.
    if (this.stopped || job.workflow_run_id === null) return;
    const touched = await this.applyJob(job.id, job.status, job.outputs ?? {}, job.error?.message ?? null);
    const runs = new Set<string>();
    for (const { run_id, step } of touched) {
      const parsed = this.parsed.get(run_id);
      if (parsed !== undefined && parsed.spec.steps[step] !== undefined && parsed.spec.steps[step].matrix === undefined) {
        runs.add(run_id);
        continue;
      }
      // A matrix instance finishing while its siblings still run changes nothing a decision reads:
      // the step is not terminal yet (fold), so no dependent becomes ready, fail-fast does not
      // fire and the run cannot finish. Skipping the advance here keeps an N-way fan-out at O(N)
      // work instead of O(N²) (each advance re-reads and folds every row of the run).
      const open = await this.db
        .selectFrom("workflow_steps")
        .select("idx")
        .where("run_id", "=", run_id)
        .where("step", "=", step)
        .where("status", "in", ["queued", "running"])
        .limit(1)
        .executeTakeFirst();
      if (open === undefined) runs.add(run_id);
    }
    await Promise.all([...runs].map((r) => this.advance(r)));
  }

  /** Records a finished job on every step row waiting for it; returns the (run, step) pairs it touched. */
  private async applyJob(jobId: string, status: JobStatus, outputs: Record<string, unknown>, error: string | null): Promise<{ run_id: string; step: string }[]> {
    const now = Date.now();
    // One statement on the scheduling path (this runs between a job's completion and its
    // dependents' submission): the update says which rows it changed. No transaction with the
    // cache write: a crash between the two loses a cache entry, never a step's state.
    const rows = await this.db
      .updateTable("workflow_steps")
      .set({ status, outputs: JSON.stringify(status === "succeeded" ? outputs : {}), error, finished_at: now })
      .where("job_id", "=", jobId)
      .where("status", "in", ["queued", "running"])
      .returning(["run_id", "step", "org_id", "cache_key"])
      .execute();
    if (rows.length === 0) return [];
    const key = rows.find((r) => r.cache_key !== null)?.cache_key;
    if (status === "succeeded" && key) {
      await this.db
        .insertInto("step_cache")
        .values({ org_id: rows[0]!.org_id, cache_key: key, job_id: jobId, outputs: JSON.stringify(outputs), created_at: now })
        .onConflict((oc) => oc.columns(["org_id", "cache_key"]).doUpdateSet({ job_id: jobId, outputs: JSON.stringify(outputs), created_at: now }))
        .execute();
    }
    const seen = new Set<string>();
    return rows.filter((r) => !seen.has(`${r.run_id}\0${r.step}`) && seen.add(`${r.run_id}\0${r.step}`)).map((r) => ({ run_id: r.run_id, step: r.step }));
  }

  /** Serialises advances of one run so two events never schedule the same step twice. */
  advance(runId: string): Promise<void> {
    const prev = this.chains.get(runId) ?? Promise.resolve();
    const next = prev.then(() => this.advanceNow(runId)).catch(() => {});
    this.chains.set(runId, next);
    void next.finally(() => {
      if (this.chains.get(runId) === next) this.chains.delete(runId);
    });
    return next;
  }

  private async spec(run: WorkflowRunsTable): Promise<ParsedWorkflow> {
    let p = this.parsed.get(run.id);
    if (!p) {
      p = parseWorkflow(JSON.parse(run.spec) as Record<string, unknown>);
      this.parsed.set(run.id, p);
    }
    return p;
  }

  private async advanceNow(runId: string): Promise<void> {
    if (this.stopped) return;
    const run = await this.db.selectFrom("workflow_runs").selectAll().where("id", "=", runId).executeTakeFirst();
    if (!run) return;
    const parsed = await this.spec(run);
    const { spec } = parsed;
    const inputs = json<Record<string, unknown>>(run.inputs, {});
    for (let pass = 0; pass < 100; pass++) {
      const rows = await this.db.selectFrom("workflow_steps").selectAll().where("run_id", "=", runId).execute();
      const states = this.fold(spec, rows);
      const failed = [...states.values()].some((s) => s.status === "failed" && !s.skipped);
      if (failed && spec.on_failure === "fail-fast" && run.failing === 0) {
        run.failing = 1;
        await this.db.updateTable("workflow_runs").set({ failing: 1 }).where("id", "=", runId).execute();
        await this.stopRunning(run.org_id, runId);
      }
      let progressed = false;
      // Another pass is needed only when this one finished something (a skip, a cache hit, a
      // failed resolution, a job that ended before its row existed): only that can make another
      // step ready, or the run finished. Queued work alone cannot.
      let settled = false;
      for (const name of parsed.order) {
        const state = states.get(name)!;
        if (state.status !== "pending") continue;
        const deps = parsed.deps[name]!;
        if (!deps.every((d) => isTerminal(states.get(d)!.status as JobStatus))) continue;
        if (await this.schedule(run, spec, name, deps, states, inputs)) settled = true;
        progressed = true;
      }
      if (!progressed) {
        await this.maybeFinish(run, spec, states, inputs);
        return;
      }
      if (!settled) return;
    }
  }

  /** Folds rows into per-step state. */
  private fold(spec: WorkflowSpec, rows: StepRow[]): Map<string, StepState> {
    const by = groupRows(rows);
    const out = new Map<string, StepState>();
    for (const name of Object.keys(spec.steps)) {
      const rs = (by.get(name) ?? []).sort((a, b) => a.idx - b.idx);
      if (rs.length === 0) {
        out.set(name, { status: "pending", skipped: false, outputs: {}, rows: rs });
        continue;
      }
      const statuses = rs.map((r) => r.status as JobStatus);
      const status: JobStatus = statuses.some((s) => !isTerminal(s))
        ? statuses.some((s) => s === "running")
          ? "running"
          : "queued"
        : statuses.some((s) => s === "failed")
          ? "failed"
          : statuses.some((s) => s === "canceled")
            ? "canceled"
            : "succeeded";
      const isMatrix = spec.steps[name]!.matrix !== undefined;
      let outputs: Record<string, unknown> = {};
      if (isMatrix) {
        const parsed = rs.map((r) => json<Record<string, unknown>>(r.outputs, {}));
        const names = new Set(parsed.flatMap((o) => Object.keys(o)));
        for (const n of names) outputs[n] = parsed.map((o) => o[n] ?? null);
      } else outputs = json(rs[0]!.outputs, {});
      out.set(name, { status, skipped: rs.every((r) => r.skipped === 1), outputs, rows: rs });
    }
    return out;
  }

  private ctxOf(states: Map<string, StepState>, inputs: Record<string, unknown>, needs: string[]): ExprContext {
    const steps: ExprContext["steps"] = {};
    for (const [n, s] of states) steps[n] = { status: s.skipped ? "skipped" : s.status, outputs: s.outputs };
    return { inputs, steps, needs };
  }

  /**
   * Decides one step whose dependencies are all finished: skip, or resolve and run it.
   * Resolves to whether any of its rows is already terminal (skipped, failed, cache hit, or a job that ended).
   */
  private async schedule(run: WorkflowRunsTable, spec: WorkflowSpec, name: string, deps: string[], states: Map<string, StepState>, inputs: Record<string, unknown>): Promise<boolean> {
    const step = spec.steps[name]!;
    const ctx = this.ctxOf(states, inputs, deps);
    const now = Date.now();
    const base = { run_id: run.id, step: name, org_id: run.org_id, job_id: null, cache_key: null, cache_hit: 0, reused: 0, matrix_values: null, outputs: "{}", created_at: now };
    const skip = async (why: string, skipped = 1) => {
      await this.db.insertInto("workflow_steps").values({ ...base, idx: 0, status: "canceled", skipped, error: why, finished_at: now }).execute();
      return true;
    };
    if (run.failing === 1) return skip(run.status === "canceled" ? "workflow canceled" : "not started: an earlier step failed (fail-fast)");
    let runIt: boolean;
    try {
      if (step.if === undefined) runIt = needsOf(step).concat(deps).every((d) => ctx.steps[d]?.status === "succeeded");
      else if (typeof step.if === "boolean") runIt = step.if;
      else {
        const body = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(step.if)?.[1] ?? step.if;
        runIt = truthy(evaluate(parseExpression(body), ctx));
      }
    } catch (err) {
      return this.failStep(base, `if: ${(err as Error).message}`);
    }
    if (!runIt) return skip(step.if === undefined ? "skipped: a dependency did not succeed" : "skipped: if evaluated to false");

    let combos: Record<string, unknown>[] = [{}];
    if (step.matrix) {
      const resolved: Record<string, unknown[]> = {};
      try {
        for (const [k, v] of Object.entries(step.matrix)) {
          const val = typeof v === "string" ? substitute(v, ctx) : v;
          resolved[k] = Array.isArray(val)
            ? val
            : val !== null && typeof val === "object"
              ? Object.keys(val)
                  .sort()
                  .map((n) => substitute((val as Record<string, unknown>)[n], ctx))
              : [val];
          if (resolved[k]!.length === 0) throw new ExpressionError(`matrix.${k} is empty`);
        }
      } catch (err) {
        return this.failStep(base, `matrix: ${(err as Error).message}`);
      }
      combos = expandMatrix(resolved);
    }
    const subs: { idx: number; values: Record<string, unknown> | null; sub: JobSubmission; key: string | null }[] = [];
    for (const [idx, values] of combos.entries()) {
      let resolvedSpec: unknown;
      try {
        resolvedSpec = expandListInputs(substitute(step.with, { ...ctx, matrix: values }));
      } catch (err) {
        return this.failStep({ ...base }, `with: ${(err as Error).message}`, idx);
      }
      const parsedSpec = JobSpecs[step.type].safeParse(resolvedSpec);
      if (!parsedSpec.success) {
        return this.failStep(base, `with (resolved): ${parsedSpec.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, idx);
      }
      const sub = JobSubmission.parse({
        type: step.type,
        spec: resolvedSpec,
        name: `${spec.name}/${name}${step.matrix ? `[${idx}]` : ""}`,
        ...(step.priority !== undefined ? { priority: step.priority } : {}),
        ...(step.requirements ? { requirements: step.requirements } : {}),
        ...(step.limits ? { limits: step.limits } : {}),
        ...(step.retry ? { retry: step.retry } : {}),
        ...(spec.project ? { project: spec.project } : {}),
      }) as JobSubmission;
      const key =
        step.cache === false
          ? null
          : "sha256:" + createHash("sha256").update(canonical({ type: step.type, spec: parsedSpec.data, version: typeof step.cache === "object" ? step.cache.version : null })).digest("hex");
      subs.push({ idx, values: step.matrix ? values : null, sub, key });
    }
    // Batched: one cache lookup, one twin lookup, one submission transaction and chunked inserts
    // per step, however wide its matrix (a 1,000-way fan-out was 5,000 sequential statements).
    const useCache = run.no_cache === 0;
    const keys = useCache ? [...new Set(subs.map((s) => s.key).filter((k): k is string => k !== null))] : [];
    const hits = new Map<string, { job_id: string; outputs: string }>();
    const twins = new Map<string, { job_id: string; status: string }>();
    for (let i = 0; i < keys.length; i += IN_CHUNK) {
      const chunk = keys.slice(i, i + IN_CHUNK);
      for (const h of await this.db.selectFrom("step_cache").select(["cache_key", "job_id", "outputs"]).where("org_id", "=", run.org_id).where("cache_key", "in", chunk).execute()) {
        hits.set(h.cache_key, h);
      }
      const open = chunk.filter((k) => !hits.has(k));
      if (open.length === 0) continue;
      // An identical step already in flight (this run or another): wait for it instead of running it twice.
      const inFlight = await this.db
        .selectFrom("workflow_steps")
        .select(["cache_key", "job_id", "status"])
        .where("org_id", "=", run.org_id)
        .where("cache_key", "in", open)
        .where("status", "in", ["queued", "running"])
        .where("job_id", "is not", null)
        .execute();
      for (const t of inFlight) if (t.cache_key !== null && t.job_id !== null && !twins.has(t.cache_key)) twins.set(t.cache_key, { job_id: t.job_id, status: t.status });
    }
    const rows: StepRow[] = [];
    /** Instances that need a new job, and those that share the job of an identical earlier instance. */
    const fresh: { row: StepRow; sub: JobSubmission }[] = [];
    const sameAs: { row: StepRow; of: number }[] = [];
    const freshByKey = new Map<string, number>();
    for (const s of subs) {
      const row: StepRow = { ...base, idx: s.idx, matrix_values: s.values === null ? null : JSON.stringify(s.values), cache_key: s.key, skipped: 0, error: null, finished_at: null, status: "queued" };
      if (s.key !== null && useCache) {
        const hit = hits.get(s.key);
        if (hit) {
          rows.push({ ...row, status: "succeeded", job_id: hit.job_id, cache_hit: 1, outputs: hit.outputs, finished_at: now });
          continue;
        }
        const twin = twins.get(s.key);
        if (twin) {
          rows.push({ ...row, status: twin.status, job_id: twin.job_id, cache_hit: 1 });
          continue;
        }
        const first = freshByKey.get(s.key);
        if (first !== undefined) {
          sameAs.push({ row: { ...row, cache_hit: 1 }, of: first });
          continue;
        }
        freshByKey.set(s.key, fresh.length);
      }
      fresh.push({ row, sub: s.sub });
    }
    if (fresh.length > 0) {
      // A train step that cannot run (its model does not fit, its dataset does not parse) fails now, not after queueing forever.
      const pre = this.preflight;
      const reports = pre ? await Promise.all(fresh.map((f) => (f.sub.type === "train" && f.sub.preflight !== false ? preflightSubmission(pre, run.org_id, f.sub) : undefined))) : [];
      const failed = reports.findIndex((r) => r !== undefined && !r.ok);
      if (failed >= 0) return this.failStep(base, preflightFailed(reports[failed]!).message, fresh[failed]!.row.idx);
      const { jobs } = await this.queue.submit(
        run.org_id,
        fresh.map((f) => f.sub),
        { workflowRunId: run.id },
      );
      for (const [i, r] of reports.entries()) if (r) await recordPreflight(this.db, run.org_id, jobs[i]!.id, r);
      fresh.forEach((f, i) => rows.push({ ...f.row, job_id: jobs[i]!.id }));
      for (const d of sameAs) rows.push({ ...d.row, job_id: jobs[d.of]!.id });
    }
    if (rows.length > 0) {
      await this.db.transaction().execute(async (trx) => {
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx.insertInto("workflow_steps").values(rows.slice(i, i + INSERT_CHUNK)).execute();
      });
    }
    // A job (ours or a twin's) may have finished between its submission and the insert, when no
    // row was there to record it: apply those now.
    const late = await this.db
      .selectFrom("workflow_steps")
      .innerJoin("jobs", "jobs.id", "workflow_steps.job_id")
      .select(["jobs.id", "jobs.status", "jobs.outputs", "jobs.error"])
      .where("workflow_steps.run_id", "=", run.id)
      .where("workflow_steps.step", "=", name)
      .where("workflow_steps.status", "in", ["queued", "running"])
      .where("jobs.status", "in", ["succeeded", "failed", "canceled"])
      .execute();
    const applied = new Set<string>();
    for (const j of late) {
      if (applied.has(j.id)) continue;
      applied.add(j.id);
      await this.applyJob(j.id, j.status as JobStatus, json(j.outputs, {}), json<{ message?: string } | null>(j.error, null)?.message ?? null);
    }
    return applied.size > 0 || hits.size > 0;
  }

  private async failStep(base: Omit<StepRow, "idx" | "status" | "skipped" | "error" | "finished_at">, message: string, idx = 0): Promise<true> {
    await this.db.insertInto("workflow_steps").values({ ...base, idx, status: "failed", skipped: 0, error: message, finished_at: Date.now() }).execute();
    return true;
  }

  /** Asks every unfinished job of a run to stop. */
  private async stopRunning(orgId: string, runId: string): Promise<void> {
    const rows = await this.db.selectFrom("workflow_steps").select(["job_id"]).where("run_id", "=", runId).where("status", "in", ["queued", "running"]).execute();
    for (const r of rows) {
      if (!r.job_id) continue;
      // A twin job shared with another live run keeps running for that run.
      const others = await this.db
        .selectFrom("workflow_steps")
        .innerJoin("workflow_runs", "workflow_runs.id", "workflow_steps.run_id")
        .select("workflow_steps.run_id")
        .where("workflow_steps.job_id", "=", r.job_id)
        .where("workflow_steps.run_id", "!=", runId)
        .where("workflow_runs.failing", "=", 0)
        .executeTakeFirst();
      if (others) continue;
      await this.queue.cancel(orgId, r.job_id).catch(() => {});
    }
  }

  private async maybeFinish(run: WorkflowRunsTable, spec: WorkflowSpec, states: Map<string, StepState>, inputs: Record<string, unknown>): Promise<void> {
    const all = [...states.values()];
    if (all.some((s) => !isTerminal(s.status as JobStatus))) return;
    const fresh = await this.db.selectFrom("workflow_runs").select(["status", "finished_at"]).where("id", "=", run.id).executeTakeFirstOrThrow();
    if (isTerminal(fresh.status as JobStatus) && fresh.status !== "canceled") return;
    let status: JobStatus;
    if (fresh.status === "canceled") status = "canceled";
    else if (all.some((s) => s.status === "failed")) status = "failed";
    else if (all.some((s) => s.status === "canceled" && !s.skipped)) status = "canceled";
    else status = "succeeded";
    let outputs: Record<string, unknown> = {};
    let error: string | null = null;
    if (status === "succeeded") {
      try {
        outputs = substitute(spec.outputs, this.ctxOf(states, inputs, [])) as Record<string, unknown>;
      } catch (err) {
        status = "failed";
        error = `outputs: ${(err as Error).message}`;
      }
    } else {
      const firstFailed = [...states.entries()].find(([, s]) => s.status === "failed");
      if (firstFailed) error = `step ${firstFailed[0]} failed${firstFailed[1].rows[0]?.error ? `: ${firstFailed[1].rows[0].error}` : ""}`;
    }
    await this.db
      .updateTable("workflow_runs")
      .set({ status, outputs: JSON.stringify(outputs), error, finished_at: fresh.finished_at ?? Date.now() })
      .where("id", "=", run.id)
      .execute();
  }

  // ── rendering ─────────────────────────────────────────────────────────────────────────

  private async render(run: WorkflowRunsTable): Promise<WorkflowRun> {
    const parsed = await this.spec(run);
    const rows = await this.db.selectFrom("workflow_steps").selectAll().where("run_id", "=", run.id).execute();
    const jobIds = rows.filter((r) => r.job_id !== null && !isTerminal(r.status as JobStatus)).map((r) => r.job_id!);
    const live = new Map<string, { status: string; started_at: number | null }>();
    if (jobIds.length > 0) {
      for (const j of await this.db.selectFrom("jobs").select(["id", "status", "started_at"]).where("id", "in", jobIds).execute()) live.set(j.id, j);
    }
    for (const r of rows) if (r.job_id && live.has(r.job_id) && !isTerminal(r.status as JobStatus)) r.status = live.get(r.job_id)!.status;
    const states = this.fold(parsed.spec, rows);
    const steps: Record<string, WorkflowStepRecord> = {};
    for (const name of parsed.order) {
      const s = states.get(name)!;
      const isMatrix = parsed.spec.steps[name]!.matrix !== undefined;
      const rec: WorkflowStepRecord = {
        status: s.status === "pending" ? "queued" : s.status,
        job_id: isMatrix ? null : (s.rows[0]?.job_id ?? null),
        cache_hit: s.rows.length > 0 && s.rows.every((r) => r.cache_hit === 1),
        outputs: s.outputs,
        needs: parsed.deps[name]!,
        error: s.rows.find((r) => r.error !== null)?.error ?? null,
        started_at: s.rows.length > 0 ? iso(Math.min(...s.rows.map((r) => r.created_at))) : null,
        finished_at: s.rows.length > 0 && s.rows.every((r) => r.finished_at !== null) ? iso(Math.max(...s.rows.map((r) => r.finished_at!))) : null,
      };
      if (s.skipped) rec.skipped = true;
      if (s.rows.length > 0 && s.rows.every((r) => r.reused === 1)) rec.reused = true;
      if (isMatrix) {
        rec.matrix = s.rows.map((r) => ({
          index: r.idx,
          values: json(r.matrix_values, {}),
          status: r.status as JobStatus,
          job_id: r.job_id,
          cache_hit: r.cache_hit === 1,
          outputs: json(r.outputs, {}),
        }));
      }
      steps[name] = rec;
    }
    return {
      id: run.id,
      name: run.name,
      status: run.status as WorkflowRun["status"],
      inputs: json(run.inputs, {}),
      outputs: json(run.outputs, {}),
      steps,
      resume_from: run.resume_from,
      no_cache: run.no_cache === 1,
      error: run.error,
      created_at: iso(run.created_at),
      finished_at: run.finished_at === null ? null : iso(run.finished_at),
    };
  }
}

function groupRows(rows: StepRow[]): Map<string, StepRow[]> {
  const by = new Map<string, StepRow[]>();
  for (const r of rows) {
    const list = by.get(r.step) ?? [];
    list.push(r);
    by.set(r.step, list);
  }
  return by;
}

/**
 * Fan-in of files: an `inputs` entry that resolved to a list (a matrix step's outputs) becomes one
 * input per element, `NAME/0`, `NAME/1`, … (zero-padded so a sorted listing is in matrix order),
 * materialised under `$NEXA_INPUTS_DIR/NAME/`. A `null` (an instance without that output) is left out.
 */
export function expandListInputs(spec: unknown): unknown {
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) return spec;
  const inputs = (spec as { inputs?: unknown }).inputs;
  if (inputs === null || typeof inputs !== "object" || Array.isArray(inputs)) return spec;
  if (!Object.values(inputs).some(Array.isArray)) return spec;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(inputs)) {
    if (!Array.isArray(value)) {
      out[name] = value;
      continue;
    }
    const digits = String(Math.max(0, value.length - 1)).length;
    value.forEach((v, i) => {
      if (v !== null) out[`${name}/${String(i).padStart(digits, "0")}`] = v;
    });
  }
  return { ...spec, inputs: out };
}
