import { z } from "zod";
import { Name, Timestamp } from "./common.js";

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "the NAME of an environment variable on the control plane (letters, digits, '_'), never the key itself");

/** An external OpenAI-compatible provider a gateway route may send traffic to. */
export const GatewayProvider = z.strictObject({
  /** Base URL up to and including `/v1`, e.g. `https://api.openai.com/v1`. */
  base_url: z.url({ protocol: /^https?$/, error: "expected an http(s) URL up to and including /v1" }),
  /** Model name sent upstream. @default the model the caller asked for */
  model: z.string().min(1).max(256).optional(),
  /** Name of the control plane's environment variable holding the provider's API key. */
  api_key_secret: EnvName.optional(),
});
export type GatewayProvider = z.infer<typeof GatewayProvider>;

/** One weighted target of a gateway route: a deployment of the org by name, or a provider. */
export const GatewayTarget = z
  .strictObject({
    /** A deployment name (a `deploy` job's `name`). */
    deployment: z.string().min(1).max(128).optional(),
    provider: GatewayProvider.optional(),
    /** Share of traffic, relative to the other targets' weights. @default 1 */
    weight: z.number().positive().max(1_000_000).default(1),
    /** Label of this variant in headers and records. @default the deployment name, or the provider's model or host */
    variant: Name.optional(),
  })
  .refine((t) => (t.deployment === undefined) !== (t.provider === undefined), { message: "give exactly one of deployment or provider", path: ["deployment"] });
export type GatewayTarget = z.infer<typeof GatewayTarget>;

/** `PUT /v1/gateway/routes/:name` body. */
export const PutGatewayRouteRequest = z
  .strictObject({
    targets: z.array(GatewayTarget).min(1, "a route needs at least one target").max(64),
    /** Same caller-supplied user id → same variant (a hash of route and user, no stored state). @default true */
    sticky: z.boolean().default(true),
  })
  .superRefine((r, ctx) => {
    const seen = new Set<string>();
    r.targets.forEach((t, i) => {
      const v = gatewayVariantName(t);
      if (seen.has(v)) ctx.addIssue({ code: "custom", path: ["targets", i, "variant"], message: `variant ${JSON.stringify(v)} appears twice: give each target its own variant name` });
      seen.add(v);
    });
  });
export type PutGatewayRouteRequest = z.infer<typeof PutGatewayRouteRequest>;

/** The variant label of a target: its `variant`, else the deployment name, else the provider's model or host. */
export function gatewayVariantName(t: { variant?: string | undefined; deployment?: string | undefined; provider?: { base_url: string; model?: string | undefined } | undefined }): string {
  if (t.variant !== undefined) return t.variant;
  if (t.deployment !== undefined) return t.deployment;
  if (t.provider?.model !== undefined) return t.provider.model;
  try {
    return new URL(t.provider?.base_url ?? "").host;
  } catch {
    return "provider";
  }
}

/** A gateway route as stored and listed. */
export const GatewayRoute = z.object({
  name: z.string(),
  targets: z.array(
    z.object({
      deployment: z.string().optional(),
      provider: z.object({ base_url: z.string(), model: z.string().optional(), api_key_secret: z.string().optional() }).optional(),
      weight: z.number(),
      variant: z.string(),
    }),
  ),
  sticky: z.boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type GatewayRoute = z.infer<typeof GatewayRoute>;

const Instant = z.string().refine((s) => !Number.isNaN(Date.parse(s)), "expected an RFC 3339 timestamp");

/** `GET /v1/gateway/requests` query. */
export const GatewayRequestsQuery = z.strictObject({
  /** Only requests for this model / route name. */
  route: z.string().min(1).max(256).optional(),
  since: Instant.optional(),
  until: Instant.optional(),
  /** `summary`: one row per route and variant; `requests`: the records, newest first. @default "summary" */
  view: z.enum(["summary", "requests"]).default("summary"),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});
export type GatewayRequestsQuery = z.infer<typeof GatewayRequestsQuery>;

/** One recorded gateway request. */
export const GatewayRequestRecord = z.object({
  id: z.string(),
  route: z.string(),
  variant: z.string().nullable(),
  upstream: z.string().nullable(),
  endpoint: z.string(),
  user_id: z.string().nullable(),
  status: z.number().int(),
  error_code: z.string().nullable(),
  stream: z.boolean(),
  latency_ms: z.number(),
  upstream_ms: z.number().nullable(),
  tokens_in: z.number().int(),
  tokens_out: z.number().int(),
  ts: Timestamp,
});
export type GatewayRequestRecord = z.infer<typeof GatewayRequestRecord>;

/** Per route and variant: the figures an A/B comparison starts from. */
export const GatewayVariantSummary = z.object({
  route: z.string(),
  variant: z.string().nullable(),
  requests: z.number().int(),
  errors: z.number().int(),
  error_rate: z.number(),
  latency_p50_ms: z.number().nullable(),
  latency_p99_ms: z.number().nullable(),
  tokens_in: z.number().int(),
  tokens_out: z.number().int(),
});
export type GatewayVariantSummary = z.infer<typeof GatewayVariantSummary>;

/** `GET /v1/gateway/requests` answer: summaries, or records, of what was flushed so far. */
export const GatewayRequestsReport = z.object({
  view: z.enum(["summary", "requests"]),
  summary: z.array(GatewayVariantSummary).optional(),
  items: z.array(GatewayRequestRecord).optional(),
});
export type GatewayRequestsReport = z.infer<typeof GatewayRequestsReport>;
