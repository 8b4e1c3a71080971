import Fastify, { type FastifyInstance } from "fastify";
import { ForgeError, toForgeError } from "@nexa/core";
import type { AppContext } from "./context.js";
import { openApiDocument } from "./openapi.js";
import { adminRoutes } from "./routes/admin.js";
import { blobRoutes } from "./routes/blobs.js";
import { jobRoutes } from "./routes/jobs.js";
import { preflightRoutes } from "./routes/preflight.js";
import { workerRoutes } from "./routes/workers.js";
import { route } from "./route.js";

/** Extra route groups (workflows, gateway, …) registered by other components. */
export type RouteGroup = (app: FastifyInstance, ctx: AppContext) => void;

/** The version this control plane reports. */
export const FORGE_VERSION = "0.1.0";

/**
 * Builds the Fastify app: every route of HTTP API v1, one error handler mapping internal errors
 * to `{error:{code,message,details}}`, Prometheus timing of every request.
 */
export function buildApp(ctx: AppContext, extra: RouteGroup[] = []): FastifyInstance {
  const app = Fastify({
    logger: ctx.options.logRequests ? { level: "info" } : false,
    bodyLimit: ctx.options.bodyLimitBytes,
    // Long-polls and log follows are long-lived: never time them out server-side.
    requestTimeout: 0,
    exposeHeadRoutes: false,
    keepAliveTimeout: 72_000,
    forceCloseConnections: true,
    return503OnClosing: true,
    ajv: { customOptions: { allErrors: false } },
    // Ids are ~30 characters and digests 71: anything far longer names nothing.
    routerOptions: { maxParamLength: 512 },
    // Errors the router raises before any route runs still get the wire error body.
    frameworkErrors: (err, _req, reply) => {
      const code = (err as { code?: string }).code;
      const fe =
        code === "FST_ERR_MAX_PARAM_LENGTH"
          ? new ForgeError("not_found", "no such resource: the id in the path is too long")
          : code === "FST_ERR_BAD_URL"
            ? new ForgeError("invalid_request", "the URL is not valid (bad percent-encoding)", { details: [{ path: "(url)", message: "not a valid URL component" }] })
            : toForgeError(err);
      void (reply as unknown as { code(n: number): { send(b: unknown): unknown } }).code(fe.status).send(fe.toBody());
    },
  });

  app.addHook("onResponse", async (req, reply) => {
    const routeUrl = req.routeOptions.url ?? "unmatched";
    ctx.metrics.httpDuration.observe({ method: req.method, route: routeUrl, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(async (err, _req, reply) => {
    const fe = fromFastifyError(err);
    if (fe.retryAfterS !== undefined) reply.header("retry-after", String(fe.retryAfterS));
    if (fe.code === "internal") app.log.error(err);
    const status = reply.statusCode === 416 ? 416 : fe.status;
    return reply.code(status).send(fe.toBody());
  });
  app.setNotFoundHandler(async (req, reply) => {
    return reply.code(404).send(new ForgeError("not_found", `no route ${req.method} ${req.url.split("?")[0]}`).toBody());
  });

  route(app, ctx, { method: "GET", url: "/healthz", tag: "system", summary: "Liveness.", scope: null, handler: async () => ({ ok: true }) });
  route(app, ctx, {
    method: "GET",
    url: "/readyz",
    tag: "system",
    summary: "Readiness: the database answers.",
    scope: null,
    handler: async ({ reply }) => {
      try {
        await ctx.db.selectFrom("orgs").select("id").limit(1).execute();
        return { ok: true };
      } catch (err) {
        reply.code(503);
        return new ForgeError("unavailable", `database not ready: ${(err as Error).message}`).toBody();
      }
    },
  });
  route(app, ctx, {
    method: "GET",
    url: "/metrics",
    tag: "system",
    summary: "Prometheus metrics.",
    scope: null,
    streams: "text/plain",
    handler: async ({ reply }) => {
      reply.header("content-type", ctx.metrics.registry.contentType);
      return ctx.metrics.registry.metrics();
    },
  });
  let openapi: Record<string, unknown> | undefined;
  route(app, ctx, {
    method: "GET",
    url: "/openapi.json",
    tag: "system",
    summary: "This document: OpenAPI 3.1, generated from the zod schemas.",
    scope: null,
    handler: async () => (openapi ??= openApiDocument(FORGE_VERSION)),
  });

  adminRoutes(app, ctx);
  jobRoutes(app, ctx);
  workerRoutes(app, ctx);
  blobRoutes(app, ctx);
  preflightRoutes(app, ctx);
  for (const group of extra) group(app, ctx);
  return app;
}

/** Maps Fastify's own errors (body too large, bad JSON, bad media type) to wire codes. */
function fromFastifyError(err: unknown): ForgeError {
  if (err instanceof ForgeError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE" || e.statusCode === 413) return new ForgeError("payload_too_large", e.message ?? "request body too large");
  if (e.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || e.statusCode === 415)
    return new ForgeError("invalid_request", `${e.message ?? "unsupported media type"}: send JSON (application/json)`, { details: [{ path: "content-type", message: "unsupported" }] });
  if (err instanceof SyntaxError || e.code === "FST_ERR_CTP_INVALID_JSON_BODY" || e.code === "FST_ERR_CTP_EMPTY_JSON_BODY")
    return new ForgeError("invalid_request", `request body is not valid JSON: ${e.message ?? ""}`, { details: [{ path: "(body)", message: "invalid JSON" }] });
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500)
    return new ForgeError(e.statusCode === 404 ? "not_found" : "invalid_request", e.message ?? "bad request");
  return toForgeError(err);
}
