import type { FastifyInstance } from "fastify";
import { ApiKey, CreateKeyRequest, CreateOrgRequest, ForgeError, Org, UsageQuery, UsageReport } from "@nexa/core";
import { z } from "zod";
import { newId } from "../../ids.js";
import { iso } from "../../rows.js";
import { usageReport } from "../../usage-report.js";
import type { AppContext } from "../context.js";
import { route } from "../route.js";

/** The usage query, with `since`/`until` checked to be instants (an unparseable one is a 422, not a bad SQL bound). */
const UsageQueryChecked = UsageQuery.superRefine((q, issue) => {
  for (const k of ["since", "until"] as const) {
    const v = q[k];
    if (v !== undefined && Number.isNaN(Date.parse(v))) issue.addIssue({ code: "custom", path: [k], message: "expected an RFC 3339 timestamp" });
  }
});

/** Orgs (instance admin), API keys (org admin) and usage. */
export function adminRoutes(app: FastifyInstance, ctx: AppContext): void {
  route(app, ctx, {
    method: "POST",
    url: "/v1/orgs",
    tag: "orgs",
    summary: "Instance admin: create an org and its first admin key (shown once).",
    scope: "admin",
    instanceAdmin: true,
    body: CreateOrgRequest,
    response: Org,
    status: 201,
    handler: async ({ body }) => {
      const exists = await ctx.db.selectFrom("orgs").select("id").where("name", "=", body.name).executeTakeFirst();
      if (exists) throw new ForgeError("conflict", `an org named ${body.name} already exists`);
      const org = { id: newId("org"), name: body.name, created_at: Date.now(), max_running: null, budget_usd: null };
      await ctx.db.insertInto("orgs").values(org).execute();
      const key = await ctx.keys.create(org.id, "admin", ["admin"]);
      return { id: org.id, name: org.name, created_at: iso(org.created_at), key: key.key };
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/orgs",
    tag: "orgs",
    summary: "Instance admin: list orgs.",
    scope: "admin",
    instanceAdmin: true,
    response: z.object({ items: z.array(Org) }),
    handler: async () => {
      const rows = await ctx.db.selectFrom("orgs").selectAll().orderBy("created_at").execute();
      return { items: rows.map((r) => ({ id: r.id, name: r.name, created_at: iso(r.created_at) })) };
    },
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/keys",
    tag: "keys",
    summary: "Create an API key {name, scopes} in the caller's org; the raw key is in this answer only.",
    scope: "admin",
    body: CreateKeyRequest,
    response: ApiKey,
    status: 201,
    handler: async ({ body, principal }) =>
      ctx.keys.create(principal.orgId, body.name, body.scopes, {
        ...(body.rate_limit_rps === undefined ? {} : { rateLimitRps: body.rate_limit_rps }),
        ...(body.rpm === undefined ? {} : { rpm: body.rpm }),
        ...(body.tpm === undefined ? {} : { tpm: body.tpm }),
      }),
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/keys",
    tag: "keys",
    summary: "List the org's keys (never the raw key).",
    scope: "admin",
    response: z.object({ items: z.array(ApiKey) }),
    handler: async ({ principal }) => ({ items: await ctx.keys.list(principal.orgId) }),
  });

  route(app, ctx, {
    method: "DELETE",
    url: "/v1/keys/:id",
    tag: "keys",
    summary: "Revoke a key.",
    scope: "admin",
    status: 204,
    handler: async ({ params, principal }) => {
      await ctx.keys.revoke(principal.orgId, params.id!);
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/usage",
    tag: "usage",
    summary: "Metered usage and cost, grouped by day, type, project or job.",
    scope: "jobs:read",
    query: UsageQueryChecked,
    response: UsageReport,
    handler: async ({ query, principal }) => usageReport(ctx.db, principal.orgId, query, ctx.options.prices.currency),
  });
}
