import { ErrorBody } from "@nexa/core";
import { z } from "zod";
import { ROUTES } from "./route.js";

function schemaOf(s: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const out = z.toJSONSchema(s, { target: "draft-2020-12", io, unrepresentable: "any" }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

/**
 * The OpenAPI 3.1 document, generated from the registered routes' zod schemas — the same
 * schemas that validate requests — so it cannot drift from the server.
 */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorRef = { $ref: "#/components/schemas/ErrorBody" };
  for (const r of ROUTES) {
    const path = r.url.replace(/:([A-Za-z_]+)/g, "{$1}");
    const params = [...r.url.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    if (r.query) {
      const qs = schemaOf(r.query, "input") as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(qs.properties ?? {})) params.push({ name, in: "query", required: (qs.required ?? []).includes(name), schema } as never);
    }
    const status = String(r.status ?? 200);
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${path.replace(/[{}]/g, "").replace(/\/(\w)/g, (_, c: string) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, "")}`,
      parameters: params,
      responses: {
        [status]: {
          description: "success",
          ...(r.streams
            ? { content: { [r.streams]: { schema: r.response ? schemaOf(r.response, "output") : { type: "string", format: "binary" } } } }
            : r.response
              ? { content: { "application/json": { schema: schemaOf(r.response, "output") } } }
              : {}),
        },
        default: { description: "error", content: { "application/json": { schema: errorRef } } },
      },
    };
    if (r.scope !== null) op.security = [{ bearer: [] }, { apiKeyHeader: [] }];
    if (r.rawBody) op.requestBody = { required: true, content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } };
    else if (r.body) op.requestBody = { required: true, content: { "application/json": { schema: schemaOf(r.body, "input") } } };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.1.0",
    info: { title: "Nexa Forge API", version, description: "Control plane of Nexa Forge. Errors are {error:{code,message,details}}." },
    servers: [{ url: "/" }],
    paths,
    components: {
      schemas: { ErrorBody: schemaOf(ErrorBody, "output") },
      securitySchemes: { bearer: { type: "http", scheme: "bearer" }, apiKeyHeader: { type: "apiKey", in: "header", name: "X-Nexa-Api-Key" } },
    },
  };
}
