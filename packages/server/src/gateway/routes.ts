import type { FastifyInstance } from "fastify";
import {
  ForgeError,
  GatewayRequestsQuery,
  GatewayRequestsReport,
  GatewayRoute,
  Name,
  PutGatewayRouteRequest,
  fieldIssues,
  type GatewayRequestRecord,
  type GatewayVariantSummary,
} from "@nexa/core";
import { z } from "zod";
import type { RouteGroup } from "../http/app.js";
import type { AppContext } from "../http/context.js";
import { route } from "../http/route.js";
import { iso } from "../rows.js";
import type { Gateway } from "./gateway.js";
import { toGatewayError } from "./openai-error.js";
import { routeFromRow } from "./target-resolver.js";

const Model = z.string({ error: "model is required: the name of a gateway route or deployment of your org" }).min(1).max(256);
const Common = {
  model: Model,
  stream: z.boolean({ error: "stream must be true or false" }).optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  /** A caller-supplied user id: the sticky key of A/B routes (or send `X-Nexa-User`). */
  user: z.string().max(256).optional(),
};

/** `POST /v1/gateway/chat/completions`: OpenAI's body; the fields the gateway reads are checked, the rest passed on. */
export const GatewayChatRequest = z.looseObject({
  ...Common,
  messages: z.array(z.looseObject({ role: z.string({ error: "each message needs a role (system, user, assistant, tool)" }).min(1) }), { error: "messages is required: a list of {role, content}" }).min(1, "messages needs at least one message"),
});

/** `POST /v1/gateway/completions`: OpenAI's legacy completions body. */
export const GatewayCompletionRequest = z.looseObject({
  ...Common,
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.number().int()), z.array(z.array(z.number().int()))], { error: "prompt is required: a string, a list of strings, or token ids" }),
});

/** The summary is computed over at most this many of the most recent matching records. */
const SUMMARY_ROWS = 200_000;

const ModelList = z.object({ object: z.literal("list"), data: z.array(z.object({ id: z.string(), object: z.literal("model"), created: z.number(), owned_by: z.string() })) });

function routeName(params: Record<string, string>): string {
  const r = Name.safeParse(params.name);
  if (!r.success) {
    const issues = fieldIssues(r.error, "name");
    throw new ForgeError("invalid_request", `invalid route name: ${issues[0]?.message ?? "bad name"}`, { details: issues });
  }
  return r.data;
}

/**
 * The gateway's HTTP routes: the OpenAI-compatible paths (OpenAI-style error bodies, any valid key
 * of the org), route management, models and request records.
 */
export function gatewayRoutes(gw: Gateway): RouteGroup {
  return (app: FastifyInstance, ctx: AppContext) => {
    void app.register(async (scope) => {
      // OpenAI clients read `{"error":{"message","type","code"}}`, so every failure on these paths
      // — auth, validation, limits — answers in that shape.
      scope.setErrorHandler(async (err, _req, reply) => {
        const m = toGatewayError(err);
        if (m.retryAfterS !== undefined) reply.header("retry-after", String(m.retryAfterS));
        return reply.code(m.status).send(m.body);
      });
      route(scope, ctx, {
        method: "POST",
        url: "/v1/gateway/chat/completions",
        tag: "gateway",
        summary: "OpenAI-compatible chat completions, routed by `model` to a gateway route or a deployment (streams with `stream: true`).",
        scope: "jobs:read",
        body: GatewayChatRequest,
        streams: "application/json or text/event-stream",
        handler: async ({ req, reply, principal, body }) => gw.forward(req, reply, principal, body, "chat/completions"),
      });
      route(scope, ctx, {
        method: "POST",
        url: "/v1/gateway/completions",
        tag: "gateway",
        summary: "OpenAI-compatible text completions, routed like chat completions.",
        scope: "jobs:read",
        body: GatewayCompletionRequest,
        streams: "application/json or text/event-stream",
        handler: async ({ req, reply, principal, body }) => gw.forward(req, reply, principal, body, "completions"),
      });
      route(scope, ctx, {
        method: "GET",
        url: "/v1/gateway/models",
        tag: "gateway",
        summary: "OpenAI-compatible model list: the org's gateway routes and healthy deployments.",
        scope: "jobs:read",
        response: ModelList,
        handler: async ({ principal }) => {
          const routes = await ctx.db.selectFrom("gateway_routes").select(["name", "created_at"]).where("org_id", "=", principal.orgId).execute();
          const deps = await ctx.db
            .selectFrom("deployments")
            .select(["name", "created_at"])
            .where("org_id", "=", principal.orgId)
            .where("status", "=", "healthy")
            .where("url", "is not", null)
            .execute();
          const seen = new Map<string, number>();
          for (const r of [...routes, ...deps]) if (!seen.has(r.name)) seen.set(r.name, Number(r.created_at));
          return { object: "list", data: [...seen].sort(([a], [b]) => a.localeCompare(b)).map(([id, at]) => ({ id, object: "model", created: Math.floor(at / 1000), owned_by: "nexa-forge" })) };
        },
      });
    });

    route(app, ctx, {
      method: "PUT",
      url: "/v1/gateway/routes/:name",
      tag: "gateway",
      summary: "Create or replace a gateway route {targets: [{deployment | provider, weight, variant}], sticky}.",
      scope: "jobs:write",
      body: PutGatewayRouteRequest,
      response: GatewayRoute,
      handler: async ({ params, principal, body }) => {
        const name = routeName(params);
        const now = Date.now();
        const targets = JSON.stringify(body.targets);
        await ctx.db
          .insertInto("gateway_routes")
          .values({ org_id: principal.orgId, name, targets, sticky: body.sticky ? 1 : 0, created_at: now, updated_at: now })
          .onConflict((oc) => oc.columns(["org_id", "name"]).doUpdateSet({ targets, sticky: body.sticky ? 1 : 0, updated_at: now }))
          .execute();
        gw.resolver.invalidate(principal.orgId, name);
        const row = await ctx.db.selectFrom("gateway_routes").selectAll().where("org_id", "=", principal.orgId).where("name", "=", name).executeTakeFirstOrThrow();
        return routeFromRow(row);
      },
    });

    route(app, ctx, {
      method: "GET",
      url: "/v1/gateway/routes",
      tag: "gateway",
      summary: "List the org's gateway routes.",
      scope: "jobs:read",
      response: z.object({ items: z.array(GatewayRoute) }),
      handler: async ({ principal }) => {
        const rows = await ctx.db.selectFrom("gateway_routes").selectAll().where("org_id", "=", principal.orgId).orderBy("name").execute();
        return { items: rows.map(routeFromRow) };
      },
    });

    route(app, ctx, {
      method: "DELETE",
      url: "/v1/gateway/routes/:name",
      tag: "gateway",
      summary: "Delete a gateway route.",
      scope: "jobs:write",
      status: 204,
      handler: async ({ params, principal }) => {
        const name = routeName(params);
        const res = await ctx.db.deleteFrom("gateway_routes").where("org_id", "=", principal.orgId).where("name", "=", name).executeTakeFirst();
        gw.resolver.invalidate(principal.orgId, name);
        if (Number(res.numDeletedRows) === 0) throw new ForgeError("not_found", `gateway route ${name} not found`);
      },
    });

    route(app, ctx, {
      method: "GET",
      url: "/v1/gateway/requests",
      tag: "gateway",
      summary: "Recorded gateway requests: a summary per route and variant (count, errors, p50/p99 latency, tokens), or the records.",
      scope: "jobs:read",
      query: GatewayRequestsQuery,
      response: GatewayRequestsReport,
      handler: async ({ principal, query }) => {
        // What this replica still holds in its buffer is written first, so a read sees it.
        await gw.recorder.flush();
        let q = ctx.db.selectFrom("gateway_requests").selectAll().where("org_id", "=", principal.orgId);
        if (query.route !== undefined) q = q.where("route", "=", query.route);
        if (query.since !== undefined) q = q.where("ts", ">=", Date.parse(query.since));
        if (query.until !== undefined) q = q.where("ts", "<", Date.parse(query.until));
        if (query.view === "requests") {
          const rows = await q.orderBy("ts", "desc").orderBy("id", "desc").limit(query.limit).execute();
          const items: GatewayRequestRecord[] = rows.map((r) => ({
            id: r.id,
            route: r.route,
            variant: r.variant,
            upstream: r.upstream,
            endpoint: r.endpoint,
            user_id: r.user_id,
            status: Number(r.status),
            error_code: r.error_code,
            stream: Number(r.stream) === 1,
            latency_ms: Number(r.latency_ms),
            upstream_ms: r.upstream_ms === null ? null : Number(r.upstream_ms),
            tokens_in: Number(r.tokens_in),
            tokens_out: Number(r.tokens_out),
            ts: iso(Number(r.ts)),
          }));
          return { view: "requests", items };
        }
        const rows = await q.select(["route", "variant", "status", "latency_ms", "tokens_in", "tokens_out"]).orderBy("ts", "desc").limit(SUMMARY_ROWS).execute();
        return { view: "summary", summary: summarise(rows) };
      },
    });
  };
}

/** Count, errors, p50/p99 latency and tokens per (route, variant). */
function summarise(rows: { route: string; variant: string | null; status: number; latency_ms: number; tokens_in: number; tokens_out: number }[]): GatewayVariantSummary[] {
  const groups = new Map<string, { route: string; variant: string | null; lat: number[]; errors: number; tin: number; tout: number }>();
  for (const r of rows) {
    const k = `${r.route}\u0000${r.variant ?? ""}`;
    let g = groups.get(k);
    if (g === undefined) groups.set(k, (g = { route: r.route, variant: r.variant, lat: [], errors: 0, tin: 0, tout: 0 }));
    g.lat.push(Number(r.latency_ms));
    if (Number(r.status) >= 400) g.errors++;
    g.tin += Number(r.tokens_in);
    g.tout += Number(r.tokens_out);
  }
  return [...groups.values()]
    .sort((a, b) => a.route.localeCompare(b.route) || (a.variant ?? "").localeCompare(b.variant ?? ""))
    .map((g) => {
      g.lat.sort((a, b) => a - b);
      const pct = (p: number) => (g.lat.length === 0 ? null : Math.round(g.lat[Math.min(g.lat.length - 1, Math.ceil(p * g.lat.length) - 1)]! * 1000) / 1000);
      return {
        route: g.route,
        variant: g.variant,
        requests: g.lat.length,
        errors: g.errors,
        error_rate: g.lat.length === 0 ? 0 : g.errors / g.lat.length,
        latency_p50_ms: pct(0.5),
        latency_p99_ms: pct(0.99),
        tokens_in: g.tin,
        tokens_out: g.tout,
      };
    });
}
