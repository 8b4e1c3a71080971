import type { FastifyInstance } from "fastify";
import { CreateWorkflowRunRequest, ListWorkflowRunsQuery, WorkflowRun } from "@nexa/core";
import { z } from "zod";
import type { AppContext } from "../http/context.js";
import { route } from "../http/route.js";
import type { WorkflowEngine } from "./engine.js";

/** `POST /v1/workflows`, `GET /v1/workflows[/:id]`, `POST /v1/workflows/:id/cancel|resume`. */
export function workflowRoutes(engine: WorkflowEngine) {
  return (app: FastifyInstance, ctx: AppContext): void => {
    route(app, ctx, {
      method: "POST",
      url: "/v1/workflows",
      tag: "workflows",
      summary: "Run a workflow file (object, or its YAML/JSON text) with inputs; resume_from reuses a previous run's succeeded steps.",
      scope: "jobs:write",
      body: CreateWorkflowRunRequest,
      response: WorkflowRun,
      status: 201,
      handler: async ({ body, principal }) =>
        engine.create(principal.orgId, { workflow: body.workflow, inputs: body.inputs, no_cache: body.no_cache, ...(body.resume_from !== undefined ? { resume_from: body.resume_from } : {}) }),
    });
    route(app, ctx, {
      method: "GET",
      url: "/v1/workflows",
      tag: "workflows",
      summary: "List workflow runs, newest first.",
      scope: "jobs:read",
      query: ListWorkflowRunsQuery,
      response: z.object({ items: z.array(WorkflowRun), next_cursor: z.string().nullable() }),
      handler: async ({ query, principal }) => engine.list(principal.orgId, query),
    });
    route(app, ctx, {
      method: "GET",
      url: "/v1/workflows/:id",
      tag: "workflows",
      summary: "Read a run: its status and each step's {status, job_id, cache_hit, outputs}.",
      scope: "jobs:read",
      response: WorkflowRun,
      handler: async ({ params, principal }) => engine.get(principal.orgId, params.id!),
    });
    route(app, ctx, {
      method: "POST",
      url: "/v1/workflows/:id/cancel",
      tag: "workflows",
      summary: "Cancel a run: unstarted steps are canceled and running jobs stopped.",
      scope: "jobs:write",
      response: WorkflowRun,
      handler: async ({ params, principal }) => engine.cancel(principal.orgId, params.id!),
    });
    route(app, ctx, {
      method: "POST",
      url: "/v1/workflows/:id/resume",
      tag: "workflows",
      summary: "Start a new run of the same file and inputs that reuses every succeeded step of this one and runs the rest.",
      scope: "jobs:write",
      body: z.strictObject({ no_cache: z.boolean().default(false) }),
      response: WorkflowRun,
      status: 201,
      handler: async ({ params, principal, body }) => {
        const old = await ctx.db.selectFrom("workflow_runs").select(["spec", "inputs"]).where("id", "=", params.id!).where("org_id", "=", principal.orgId).executeTakeFirst();
        if (!old) return engine.get(principal.orgId, params.id!); // throws the 404
        return engine.create(principal.orgId, { workflow: JSON.parse(old.spec) as Record<string, unknown>, inputs: JSON.parse(old.inputs) as Record<string, unknown>, resume_from: params.id!, no_cache: body.no_cache });
      },
    });
  };
}
