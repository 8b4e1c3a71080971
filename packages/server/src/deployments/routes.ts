import type { FastifyInstance } from "fastify";
import { Deployment, ForgeError, ListDeploymentsQuery, WorkerHeartbeatRequest, WorkerHeartbeatResponse } from "@nexa/core";
import { z } from "zod";
import type { AppContext } from "../http/context.js";
import { route } from "../http/route.js";
import type { DeploymentRegistry } from "./registry.js";

/**
 * `GET /v1/deployments[/:id]`, `DELETE /v1/deployments/:id`, and the worker side of it,
 * `POST /v1/workers/:id/heartbeat`.
 */
export function deploymentRoutes(registry: DeploymentRegistry) {
  return (app: FastifyInstance, ctx: AppContext): void => {
    route(app, ctx, {
      method: "GET",
      url: "/v1/deployments",
      tag: "deployments",
      summary: "List served models started by deploy jobs, newest first (filter by status, name).",
      scope: "jobs:read",
      query: ListDeploymentsQuery,
      response: z.object({ items: z.array(Deployment) }),
      handler: async ({ query, principal }) => ({ items: await registry.list(principal.orgId, query) }),
    });
    route(app, ctx, {
      method: "GET",
      url: "/v1/deployments/:id",
      tag: "deployments",
      summary: "Read a deployment: status, url, backend, the worker serving it, the deploy job behind it, restarts.",
      scope: "jobs:read",
      response: Deployment,
      handler: async ({ params, principal }) => registry.get(principal.orgId, params.id!),
    });
    route(app, ctx, {
      method: "DELETE",
      url: "/v1/deployments/:id",
      tag: "deployments",
      summary: "Stop a deployment: `stopping` until its worker stops the server (`stopped` at once when that worker is gone); a deploy job still starting is canceled.",
      scope: "jobs:write",
      response: Deployment,
      handler: async ({ params, principal }) => registry.stop(principal.orgId, params.id!),
    });
    route(app, ctx, {
      method: "POST",
      url: "/v1/workers/:id/heartbeat",
      tag: "workers",
      summary: "A worker reports the deployments it supervises ({deployments: [{id, state, url, restarts}]}) and learns which to stop; refreshes its last_seen_at.",
      scope: "worker",
      body: WorkerHeartbeatRequest,
      response: WorkerHeartbeatResponse,
      handler: async ({ params, principal, body }) => {
        const w = await ctx.db.selectFrom("workers").select(["id"]).where("id", "=", params.id!).where("org_id", "=", principal.orgId).executeTakeFirst();
        if (!w) throw new ForgeError("not_found", `worker ${params.id!} not found`);
        await ctx.queue.touchWorker(w.id);
        return { stop: await registry.heartbeat(principal.orgId, w.id, body.deployments) };
      },
    });
  };
}
