import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ForgeError, invalidRequest, type Scope } from "@nexa/core";
import type { z } from "zod";
import type { Principal } from "../auth.js";
import { requireScope } from "../auth.js";
import type { AppContext } from "./context.js";

/** Arguments a route handler receives, already validated. */
export interface RouteArgs<B, Q> {
  req: FastifyRequest;
  reply: FastifyReply;
  principal: Principal;
  body: B;
  query: Q;
  params: Record<string, string>;
  ctx: AppContext;
}

/** A route: its schemas feed validation and the generated OpenAPI document alike. */
export interface RouteDef<B extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType> {
  method: "GET" | "POST" | "PUT" | "DELETE" | "HEAD";
  url: string;
  summary: string;
  tag: string;
  /** Scope required; `null` for unauthenticated routes. */
  scope: Scope | null;
  /** Instance-admin only (org management). */
  instanceAdmin?: boolean;
  body?: B;
  query?: Q;
  /** Response schema of the success status, for the OpenAPI document. */
  response?: z.ZodType;
  /** Success status. @default 200 */
  status?: number;
  /** The body is a byte stream, not JSON. */
  rawBody?: boolean;
  /** The response is a stream (NDJSON, SSE, bytes). */
  streams?: string;
  /**
   * What to do with NUL characters in body strings, which PostgreSQL text cannot hold: refuse
   * them with a 422 naming the field, or replace them with U+FFFD (log lines from processes).
   * @default "reject"
   */
  nul?: "reject" | "replace";
  handler(args: RouteArgs<z.infer<B>, z.infer<Q>>): Promise<unknown>;
}

/** Every route registered, in order; read by the OpenAPI generator. */
export const ROUTES: RouteDef[] = [];

function apiKeyOf(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === "string" && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, "").trim();
  const header = req.headers["x-nexa-api-key"];
  return typeof header === "string" ? header.trim() : undefined;
}

/**
 * Registers a route: authenticates, applies the per-key rate limit, checks the scope, validates
 * params/query/body with zod (422 naming each failing field), and serialises the result.
 */
export function route<B extends z.ZodType, Q extends z.ZodType>(app: FastifyInstance, ctx: AppContext, def: RouteDef<B, Q>): void {
  if (!ROUTES.some((r) => r.method === def.method && r.url === def.url)) ROUTES.push(def as unknown as RouteDef);
  app.route({
    method: def.method,
    url: def.url,
    handler: async (req, reply) => {
      let principal: Principal;
      if (def.scope === null) {
        principal = { keyId: "", orgId: "", scopes: [], instanceAdmin: false, rateLimitRps: null };
      } else {
        principal = await ctx.keys.verify(apiKeyOf(req));
        ctx.limiter.take(principal.keyId, principal.rateLimitRps);
        requireScope(principal, def.scope);
        if (def.instanceAdmin && !principal.instanceAdmin) throw new ForgeError("forbidden", "only the instance admin key may manage orgs");
      }
      let query: unknown = req.query ?? {};
      if (def.query) {
        const r = def.query.safeParse(query);
        if (!r.success) throw invalidRequest(r.error, "query string", "query");
        query = r.data;
        rejectNul(query, "query");
      }
      let body: unknown = req.body;
      if (def.body && !def.rawBody) {
        const r = def.body.safeParse(body === undefined || body === null ? {} : body);
        if (!r.success) throw invalidRequest(r.error);
        body = def.nul === "replace" ? replaceNul(r.data) : r.data;
        rejectNul(body, "");
      }
      const params = (req.params ?? {}) as Record<string, string>;
      rejectNul(params, "params");
      const result = await def.handler({
        req,
        reply,
        principal,
        body: body as z.infer<B>,
        query: query as z.infer<Q>,
        params,
        ctx,
      });
      if (reply.sent) return reply;
      if (def.status !== undefined && reply.statusCode === 200) reply.code(def.status);
      if (result === undefined) return reply.send();
      return reply.send(result);
    },
  });
}

/** Throws a 422 naming the first string (or key) that holds a NUL character. */
function rejectNul(value: unknown, path: string): void {
  const bad = findNul(value, path);
  if (bad !== undefined) {
    const where = bad === "" ? "(body)" : bad;
    throw new ForgeError("invalid_request", `invalid request: ${where}: NUL characters (\\u0000) are not allowed`, {
      details: [{ path: where, message: "NUL characters (\\u0000) are not allowed" }],
    });
  }
}

function findNul(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === "string") return value.includes("\u0000") ? path : undefined;
  if (typeof value !== "object" || value === null || depth > 64) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const p = path === "" ? k : `${path}.${k}`;
    if (k.includes("\u0000")) return p;
    const found = findNul(v, p, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

function replaceNul<T>(value: T): T {
  if (typeof value === "string") return (value.includes("\u0000") ? value.replaceAll("\u0000", "\uFFFD") : value) as T;
  if (Array.isArray(value)) return value.map(replaceNul) as T;
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replaceAll("\u0000", "\uFFFD"), replaceNul(v)])) as T;
  return value;
}
