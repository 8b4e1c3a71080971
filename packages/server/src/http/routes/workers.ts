import type { FastifyInstance } from "fastify";
import {
  BatchCompleteRequest,
  BatchCompleteResponse,
  ClaimRequest,
  ClaimResponse,
  CompleteRequest,
  FailRequest,
  ForgeError,
  HeartbeatResponse,
  Job,
  LogBatch,
  MetricBatch,
  RegisterWorkerRequest,
  RegisterWorkerResponse,
  Worker,
} from "@nexa/core";
import { sql } from "kysely";
import { z } from "zod";
import { newId } from "../../ids.js";
import { claimsJson, workerFromRow } from "../../rows.js";
import type { WorkersTable } from "../../store/schema.js";
import type { AppContext } from "../context.js";
import { route } from "../route.js";

/** Worker registration, claims, and the lease endpoints (heartbeat, logs, metrics, finish). */
export function workerRoutes(app: FastifyInstance, ctx: AppContext): void {
  const Accepted = z.object({ accepted: z.number().int() });

  route(app, ctx, {
    method: "POST",
    url: "/v1/workers",
    tag: "workers",
    summary: "Register a worker. Registering again under the same name (a restart) drops the old registration's leases at once.",
    scope: "worker",
    body: RegisterWorkerRequest,
    response: RegisterWorkerResponse,
    status: 201,
    handler: async ({ body, principal }) => {
      const now = Date.now();
      const previous = await ctx.db.selectFrom("workers").select("id").where("org_id", "=", principal.orgId).where("name", "=", body.name).where("status", "=", "online").execute();
      if (previous.length > 0) {
        await ctx.db.updateTable("workers").set({ status: "offline" }).where("id", "in", previous.map((p) => p.id)).execute();
        await ctx.queue.loseLeases({ workerIds: previous.map((p) => p.id) }, "lost");
      }
      const row: WorkersTable = {
        id: newId("wrk"),
        org_id: principal.orgId,
        name: body.name,
        capabilities: JSON.stringify(body.capabilities),
        accepts: JSON.stringify(body.accepts ?? []),
        status: "online",
        version: body.version ?? null,
        created_at: now,
        last_seen_at: now,
      };
      await ctx.db.insertInto("workers").values(row).execute();
      ctx.queue.workersChanged(principal.orgId);
      // Jobs that waited for a worker like this one can now be claimed.
      ctx.bus.publish({ kind: "jobs", org: principal.orgId, jobs: "any" });
      return { ...workerFromRow(row, 0), lease_ttl_s: ctx.options.leaseTtlMs / 1000, heartbeat_interval_s: ctx.options.heartbeatIntervalMs / 1000 };
    },
  });

  route(app, ctx, {
    method: "DELETE",
    url: "/v1/workers/:id",
    tag: "workers",
    summary: "Deregister a worker: its leases are lost at once and their jobs re-queued (not spending the failure budget).",
    scope: "worker",
    status: 204,
    handler: async ({ params, principal }) => {
      const w = await workerOf(ctx, principal.orgId, params.id!);
      await ctx.db.updateTable("workers").set({ status: "offline" }).where("id", "=", w.id).execute();
      ctx.queue.workersChanged(principal.orgId);
      await ctx.queue.loseLeases({ workerIds: [w.id] }, "lost");
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/workers",
    tag: "workers",
    summary: "List workers with their capabilities and how many jobs each is running.",
    scope: "jobs:read",
    response: z.object({ items: z.array(Worker) }),
    handler: async ({ principal }) => {
      const rows = await ctx.db.selectFrom("workers").selectAll().where("org_id", "=", principal.orgId).orderBy("created_at", "desc").limit(1000).execute();
      const running = await ctx.db
        .selectFrom("jobs")
        .select(["worker_id", sql<number>`count(*)`.as("n")])
        .where("org_id", "=", principal.orgId)
        .where("status", "=", "running")
        .groupBy("worker_id")
        .execute();
      const counts = new Map(running.map((r) => [r.worker_id, Number(r.n)]));
      return { items: rows.map((r) => workerFromRow(r, counts.get(r.id) ?? 0)) };
    },
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/workers/:id/claim",
    tag: "workers",
    summary: "Long-poll for work: {wait_s, max_jobs} → 200 {lease, job, claims} or 204 when nothing came within wait_s.",
    scope: "worker",
    body: ClaimRequest,
    response: ClaimResponse,
    handler: async ({ params, principal, body, req, reply }) => {
      const w = await workerOf(ctx, principal.orgId, params.id!);
      if (w.status !== "online") throw new ForgeError("conflict", `worker ${w.id} is not registered any more; register again`);
      await ctx.queue.touchWorker(w.id);
      const gone = new AbortController();
      const onClose = () => gone.abort();
      req.raw.socket.once("close", onClose);
      const signal = AbortSignal.any([gone.signal, ctx.shutdown]);
      const started = process.hrtime.bigint();
      try {
        const claims = await ctx.queue.claimRows(principal.orgId, w, body.max_jobs, body.wait_s * 1000, signal);
        ctx.metrics.claimWait.observe(Number(process.hrtime.bigint() - started) / 1e9);
        if (claims.length === 0) {
          reply.code(204);
          return undefined;
        }
        // ClaimResponse as text: each job row serialised once, its JSON columns spliced in as stored.
        reply.type("application/json; charset=utf-8");
        return claimsJson(claims);
      } finally {
        req.raw.socket.off("close", onClose);
      }
    },
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/leases/:id/heartbeat",
    tag: "leases",
    summary: "Extend a lease; answers {expires_at, cancel_requested}; 409 once the lease is lost.",
    scope: "worker",
    response: HeartbeatResponse,
    handler: async ({ params, principal }) => ctx.queue.heartbeat(principal.orgId, params.id!),
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/leases/:id/logs",
    tag: "leases",
    summary: "Append a batch of log lines to the lease's job.",
    scope: "worker",
    body: LogBatch,
    nul: "replace",
    response: Accepted,
    handler: async ({ params, principal, body }) => ({ accepted: await ctx.queue.appendLogs(principal.orgId, params.id!, body) }),
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/leases/:id/metrics",
    tag: "leases",
    summary: "Append a batch of metric points to the lease's job.",
    scope: "worker",
    body: MetricBatch,
    response: Accepted,
    handler: async ({ params, principal, body }) => ({ accepted: await ctx.queue.appendMetrics(principal.orgId, params.id!, body) }),
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/leases/:id/complete",
    tag: "leases",
    summary: "Finish the attempt successfully with outputs, usage and manifest; 409 for a stale lease.",
    scope: "worker",
    body: CompleteRequest,
    response: Job,
    handler: async ({ params, principal, body }) => ctx.queue.complete(principal.orgId, params.id!, body),
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/leases/complete",
    tag: "leases",
    summary: "Finish many attempts successfully in one request: one result per lease, a stale lease does not hold up the others.",
    scope: "worker",
    body: BatchCompleteRequest,
    response: BatchCompleteResponse,
    handler: async ({ principal, body }) => ({ items: await ctx.queue.completeMany(principal.orgId, body.leases) }),
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/leases/:id/fail",
    tag: "leases",
    summary: "Finish the attempt with an error; `kind` picks the retry budget (error, preempted, canceled, guardrail).",
    scope: "worker",
    body: FailRequest,
    response: Job,
    handler: async ({ params, principal, body }) => ctx.queue.fail(principal.orgId, params.id!, body),
  });
}

async function workerOf(ctx: AppContext, orgId: string, id: string): Promise<WorkersTable> {
  const w = await ctx.db.selectFrom("workers").selectAll().where("id", "=", id).where("org_id", "=", orgId).executeTakeFirst();
  if (!w) throw new ForgeError("not_found", `worker ${id} not found`);
  return w;
}
