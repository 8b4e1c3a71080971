import { ForgeError, fieldIssues } from "@nexa/core";
import { z } from "zod";

/** What a caller may pass for the gateway (`ServerOptions.gateway`). Flags beat environment beat defaults. */
export interface GatewayOptions {
  /** Time to open a connection to an upstream, seconds (env `NEXA_GATEWAY_CONNECT_TIMEOUT_S`). @default 5 */
  connectTimeoutS?: number;
  /** Time from sending a request to the upstream's response headers, seconds (env `NEXA_GATEWAY_TIMEOUT_S`). @default 300 */
  timeoutS?: number;
  /** Longest silence between two body chunks of an upstream answer, seconds (env `NEXA_GATEWAY_IDLE_TIMEOUT_S`). @default 120 */
  idleTimeoutS?: number;
  /** How often buffered request records and usage are written, ms (small batches keep each synchronous SQLite write short). @default 200 */
  flushIntervalMs?: number;
  /** How long a resolved route or deployment is reused before it is read again, ms. @default 2000 */
  resolveCacheMs?: number;
  /** Keep-alive connections per upstream origin. @default 256 */
  connectionsPerUpstream?: number;
}

/** {@link GatewayOptions} with every default applied. */
export interface ResolvedGatewayOptions {
  connectTimeoutMs: number;
  timeoutMs: number;
  idleTimeoutMs: number;
  flushIntervalMs: number;
  resolveCacheMs: number;
  connectionsPerUpstream: number;
}

const seconds = z.coerce.number().finite().positive();
const GatewayEnv = z.object({
  NEXA_GATEWAY_CONNECT_TIMEOUT_S: seconds.optional(),
  NEXA_GATEWAY_TIMEOUT_S: seconds.optional(),
  NEXA_GATEWAY_IDLE_TIMEOUT_S: seconds.optional(),
});

/** Applies precedence (option > env > default); a bad environment value fails naming the variable. */
export function resolveGatewayOptions(o: GatewayOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedGatewayOptions {
  const picked = Object.fromEntries(Object.keys(GatewayEnv.shape).filter((k) => env[k] !== undefined && env[k] !== "").map((k) => [k, env[k]]));
  const r = GatewayEnv.safeParse(picked);
  if (!r.success) throw new ForgeError("invalid_request", `invalid environment: ${fieldIssues(r.error).map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  const e = r.data;
  return {
    connectTimeoutMs: (o.connectTimeoutS ?? e.NEXA_GATEWAY_CONNECT_TIMEOUT_S ?? 5) * 1000,
    timeoutMs: (o.timeoutS ?? e.NEXA_GATEWAY_TIMEOUT_S ?? 300) * 1000,
    idleTimeoutMs: (o.idleTimeoutS ?? e.NEXA_GATEWAY_IDLE_TIMEOUT_S ?? 120) * 1000,
    flushIntervalMs: o.flushIntervalMs ?? 200,
    resolveCacheMs: o.resolveCacheMs ?? 2000,
    connectionsPerUpstream: o.connectionsPerUpstream ?? 256,
  };
}
