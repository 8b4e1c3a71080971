import type { FastifyInstance } from "fastify";
import {
  BatchSubmitRequest,
  BulkRetryRequest,
  ForgeError,
  invalidRequest,
  isTerminal,
  Job,
  JobEvent,
  JobSubmission,
  ListJobsQuery,
  LogLine,
  MetricSeries,
  RunManifest,
  type AttemptManifest,
  type JobStatus,
} from "@nexa/core";
import { z } from "zod";
import { preflightAtSubmit, preflightDeps, recordedPreflight, recordPreflight, SKIP_PREFLIGHT_HEADER } from "../../preflight.js";
import { eventFromRow, iso, jobFromRow, json } from "../../rows.js";
import type { AppContext } from "../context.js";
import { route } from "../route.js";
import { openStream, waitForChange } from "../stream.js";

const JobList = z.object({ items: z.array(Job), next_cursor: z.string().nullable() });
const LogsQuery = z.object({
  follow: z.union([z.literal("1"), z.literal("true"), z.literal("0"), z.literal("false")]).optional(),
  after: z.coerce.number().int().nonnegative().default(0),
  attempt: z.coerce.number().int().positive().optional(),
});

/** Job submission, reads, cancel/retry, logs, events, metrics and manifests. */
export function jobRoutes(app: FastifyInstance, ctx: AppContext): void {
  route(app, ctx, {
    method: "POST",
    url: "/v1/jobs",
    tag: "jobs",
    summary:
      "Submit a job. With an Idempotency-Key header, a repeat returns the existing job (200) instead of a new one (201). A train job is preflighted first (as POST /v1/preflight): a failing check answers 422 preflight_failed with the checks in details; skip with \"preflight\": false or the header X-Nexa-Skip-Preflight: 1.",
    scope: "jobs:write",
    body: JobSubmission,
    response: Job,
    handler: async ({ body, principal, req, reply }) => {
      const key = req.headers["idempotency-key"];
      const idempotencyKey = typeof key === "string" && key !== "" ? key.slice(0, 256) : undefined;
      // Train jobs only (nothing runs for other types): a failing preflight answers 422 preflight_failed.
      const preflight = body.type === "train" ? await preflightAtSubmit(preflightDeps(ctx), principal.orgId, body as JobSubmission, req.headers[SKIP_PREFLIGHT_HEADER], idempotencyKey) : undefined;
      const { jobs, created } = await ctx.queue.submit(principal.orgId, [body as JobSubmission], idempotencyKey === undefined ? {} : { idempotencyKey });
      reply.code(created ? 201 : 200);
      const job = jobs[0]!;
      if (created) {
        job.waiting_reason = await ctx.queue.waitingReason({ status: job.status, run_after: 0, org_id: principal.orgId, type: job.type, requirements: JSON.stringify(job.requirements) });
        if (preflight) await recordPreflight(ctx.db, principal.orgId, job.id, preflight);
      }
      return preflight ? { ...job, preflight } : job;
    },
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/jobs/batch",
    tag: "jobs",
    summary: "Submit many jobs in one transaction.",
    scope: "jobs:write",
    body: BatchSubmitRequest,
    response: z.object({ items: z.array(Job) }),
    status: 201,
    handler: async ({ body, principal }) => {
      const subs: JobSubmission[] = [];
      for (const [i, raw] of body.jobs.entries()) {
        const r = JobSubmission.safeParse(raw);
        if (!r.success) throw invalidRequest(r.error, `job ${i}`, `jobs.${i}`);
        subs.push(r.data as JobSubmission);
      }
      const { jobs } = await ctx.queue.submit(principal.orgId, subs);
      return { items: jobs };
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/jobs",
    tag: "jobs",
    summary: "List jobs, newest first (filter by status, type, project; page with cursor).",
    scope: "jobs:read",
    query: ListJobsQuery,
    response: JobList,
    handler: async ({ query, principal }) => {
      let q = ctx.db.selectFrom("jobs").selectAll().where("org_id", "=", principal.orgId);
      if (query.status) q = q.where("status", "=", query.status);
      if (query.type) q = q.where("type", "=", query.type);
      if (query.project) q = q.where("project", "=", query.project);
      if (query.cursor) q = q.where("id", "<", query.cursor);
      const rows = await q.orderBy("id", "desc").limit(query.limit + 1).execute();
      const page = rows.slice(0, query.limit);
      return { items: page.map((r) => jobFromRow(r)), next_cursor: rows.length > query.limit ? page.at(-1)!.id : null };
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/jobs/:id",
    tag: "jobs",
    summary: "Read a job; a queued job says why no worker has taken it (waiting_reason).",
    scope: "jobs:read",
    response: Job,
    handler: async ({ params, principal }) => {
      const row = await ctx.queue.getRow(principal.orgId, params.id!);
      return jobFromRow(row, await ctx.queue.waitingReason(row));
    },
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/jobs/:id/cancel",
    tag: "jobs",
    summary: "Cancel: a queued job at once; a running one by SIGTERM, grace, SIGKILL on its worker.",
    scope: "jobs:write",
    response: Job,
    handler: async ({ params, principal }) => ctx.queue.cancel(principal.orgId, params.id!),
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/jobs/:id/retry",
    tag: "jobs",
    summary: "Retry a failed or canceled job with a fresh failure budget.",
    scope: "jobs:write",
    response: Job,
    handler: async ({ params, principal }) => (await ctx.queue.retry(principal.orgId, [params.id!]))[0]!,
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/jobs/retry",
    tag: "jobs",
    summary: "Retry failed jobs in bulk: by ids, or every failed job (optionally of a type, finished since a time).",
    scope: "jobs:write",
    body: BulkRetryRequest.superRefine((b, issue) => {
      if (b.since !== undefined && Number.isNaN(Date.parse(b.since))) issue.addIssue({ code: "custom", path: ["since"], message: "expected an RFC 3339 timestamp" });
    }),
    response: z.object({ items: z.array(Job) }),
    handler: async ({ body, principal }) => {
      let ids = body.ids;
      if (ids === undefined) {
        let q = ctx.db.selectFrom("jobs").select("id").where("org_id", "=", principal.orgId).where("status", "=", "failed");
        if (body.type) q = q.where("type", "=", body.type);
        if (body.since) q = q.where("finished_at", ">=", Date.parse(body.since));
        ids = (await q.limit(10_000).execute()).map((r) => r.id);
      }
      return { items: await ctx.queue.retry(principal.orgId, ids) };
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/jobs/:id/logs",
    tag: "jobs",
    summary: "Log lines as NDJSON {seq, ts, attempt, stream, line}; ?follow=1 streams until the job ends.",
    scope: "jobs:read",
    query: LogsQuery,
    streams: "application/x-ndjson",
    response: LogLine,
    handler: async ({ params, principal, query, req, reply }) => {
      const id = params.id!;
      await ctx.queue.getRow(principal.orgId, id);
      const follow = query.follow === "1" || query.follow === "true";
      const stream = openStream(req, reply, ctx, "application/x-ndjson");
      let after = query.after;
      for (;;) {
        const change = follow ? waitForChange(ctx, id, ["logs", "job"], stream.signal) : undefined;
        for (;;) {
          let q = ctx.db.selectFrom("job_logs").selectAll().where("job_id", "=", id).where("seq", ">", after);
          if (query.attempt !== undefined) q = q.where("attempt", "=", query.attempt);
          const rows = await q.orderBy("seq", "asc").limit(1000).execute();
          if (rows.length === 0) break;
          const text = rows.map((r) => JSON.stringify({ seq: r.seq, ts: iso(r.ts), attempt: r.attempt, stream: r.stream, line: r.line })).join("\n") + "\n";
          await stream.write(text);
          after = rows.at(-1)!.seq;
          if (rows.length < 1000) break;
        }
        if (!follow || stream.signal.aborted) {
          change?.cancel();
          break;
        }
        const job = await ctx.db.selectFrom("jobs").select(["status", "log_seq"]).where("id", "=", id).executeTakeFirstOrThrow();
        if (isTerminal(job.status as JobStatus) && job.log_seq <= after) {
          change?.cancel();
          break;
        }
        await change!.promise;
      }
      stream.end();
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/jobs/:id/events",
    tag: "jobs",
    summary: "Server-sent events of the job's state changes, from the first (or after Last-Event-ID) until it ends.",
    scope: "jobs:read",
    streams: "text/event-stream",
    response: JobEvent,
    handler: async ({ params, principal, req, reply }) => {
      const id = params.id!;
      await ctx.queue.getRow(principal.orgId, id);
      const last = Number(req.headers["last-event-id"] ?? 0);
      let after = Number.isFinite(last) ? last : 0;
      const stream = openStream(req, reply, ctx, "text/event-stream");
      const keepalive = setInterval(() => void stream.write(": keep-alive\n\n").catch(() => {}), 15_000);
      try {
        for (;;) {
          const change = waitForChange(ctx, id, ["job"], stream.signal);
          const rows = await ctx.db.selectFrom("job_events").selectAll().where("job_id", "=", id).where("seq", ">", after).orderBy("seq", "asc").limit(1000).execute();
          let terminal = false;
          for (const r of rows) {
            const ev = eventFromRow(r);
            await stream.write(`id: ${ev.seq}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`);
            after = ev.seq;
            terminal = isTerminal(ev.status);
          }
          if (rows.length === 0) {
            const job = await ctx.db.selectFrom("jobs").select("status").where("id", "=", id).executeTakeFirstOrThrow();
            terminal = isTerminal(job.status as JobStatus);
          }
          if (terminal || stream.signal.aborted) {
            change.cancel();
            break;
          }
          if (rows.length < 1000) await change.promise;
          else change.cancel();
        }
      } finally {
        clearInterval(keepalive);
        stream.end();
      }
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/jobs/:id/metrics",
    tag: "jobs",
    summary: "Metric series of a job: {series: {<name>: [{step, ts, value}]}}.",
    scope: "jobs:read",
    response: MetricSeries,
    handler: async ({ params, principal }) => {
      await ctx.queue.getRow(principal.orgId, params.id!);
      const rows = await ctx.db.selectFrom("job_metrics").selectAll().where("job_id", "=", params.id!).orderBy("name").orderBy("step").orderBy("ts").execute();
      const series: MetricSeries["series"] = {};
      for (const r of rows) (series[r.name] ??= []).push({ step: r.step, ts: iso(r.ts), value: r.value });
      return { series };
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/jobs/:id/manifest",
    tag: "jobs",
    summary: "The run manifest: per attempt its resolved spec, inputs, outputs, worker hardware, software, timings, exit and usage.",
    scope: "jobs:read",
    response: RunManifest,
    handler: async ({ params, principal }) => {
      const job = await ctx.queue.getRow(principal.orgId, params.id!);
      const attempts = await ctx.db.selectFrom("attempts").selectAll().where("job_id", "=", job.id).orderBy("attempt").orderBy("created_at").execute();
      const workers = new Map(
        (await ctx.db.selectFrom("workers").selectAll().where("id", "in", attempts.length ? attempts.map((a) => a.worker_id) : [""]).execute()).map((w) => [w.id, w]),
      );
      const preflight = job.type === "train" ? await recordedPreflight(ctx.db, job.id) : undefined;
      return {
        job_id: job.id,
        type: job.type,
        status: job.status,
        ...(preflight ? { preflight } : {}),
        attempts: attempts.map((a): AttemptManifest => {
          const m = json<Partial<AttemptManifest>>(a.manifest, {});
          const w = workers.get(a.worker_id);
          const caps = w ? json<{ cpus?: number; memory_gb?: number; gpus?: unknown[] }>(w.capabilities, {}) : {};
          return {
            ...m,
            attempt: a.attempt,
            lease_id: a.id,
            spec: m.spec ?? json(job.spec, {}),
            inputs: m.inputs ?? {},
            outputs: m.outputs ?? (a.status === "succeeded" ? json(job.outputs, {}) : {}),
            worker: { id: a.worker_id, ...(w ? { name: w.name, cpus: caps.cpus, memory_gb: caps.memory_gb, gpus: caps.gpus ?? [] } : { gpus: [] }), ...(m.worker ?? {}) },
            software: m.software ?? {},
            timings: { leased_at: iso(a.created_at), ...(a.ended_at !== null ? { ended_at: iso(a.ended_at), wall_s: (a.ended_at - a.created_at) / 1000 } : {}), ...(m.timings ?? {}) },
            exit: m.exit ?? { status: a.status },
            ...(a.usage !== null ? { usage: json(a.usage, undefined) } : {}),
          };
        }),
      };
    },
  });

  void ForgeError;
}
