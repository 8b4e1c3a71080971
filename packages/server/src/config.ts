import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { DEFAULT_PRICES, ForgeError, PriceTable, fieldIssues } from "@nexa/core";
import { z } from "zod";
import { resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from "./gateway/options.js";

/** What a caller may pass to {@link startServer}. Flags beat environment beat defaults. */
export interface ServerOptions {
  /** Folder for an embedded install. @default $NEXA_HOME or ~/.nexa */
  home?: string;
  /** `sqlite:<path>` or `postgres://…`. @default sqlite:<home>/forge.db */
  databaseUrl?: string;
  /** `file:<dir>`. @default file:<home>/blobs */
  blobUrl?: string;
  /** @default "127.0.0.1" */
  host?: string;
  /** 0 picks a free port. @default 8000 */
  port?: number;
  /** Lease time-to-live in seconds. @default 30 */
  leaseTtlS?: number;
  /** Heartbeat interval workers are told to use, seconds. @default 5 */
  heartbeatIntervalS?: number;
  /** Largest JSON body, bytes. @default 4 MiB */
  bodyLimitBytes?: number;
  /** Largest blob upload, bytes. @default 10 GiB */
  maxBlobBytes?: number;
  /** Default per-key request rate (token bucket); 0 disables. @default 1000 */
  rateLimitRps?: number;
  /** Price table file (JSON). @default <home>/prices.json when present */
  pricesFile?: string;
  /** Log HTTP requests (pino) to stderr. @default false */
  logRequests?: boolean;
  /** Write the admin key to `<home>/credentials` on first start. @default true */
  writeCredentials?: boolean;
  /** The OpenAI-compatible gateway: upstream timeouts, record flushing, caching. */
  gateway?: GatewayOptions;
}

/** {@link ServerOptions} with every default applied. */
export interface ResolvedServerOptions {
  home: string;
  databaseUrl: string;
  blobDir: string;
  host: string;
  port: number;
  leaseTtlMs: number;
  heartbeatIntervalMs: number;
  bodyLimitBytes: number;
  maxBlobBytes: number;
  rateLimitRps: number;
  prices: PriceTable;
  pricesFile: string | undefined;
  logRequests: boolean;
  writeCredentials: boolean;
  gateway: ResolvedGatewayOptions;
}

const num = z.coerce.number().finite();

/** Environment variables the control plane reads, validated once at start-up. */
const ServerEnv = z.object({
  NEXA_HOME: z.string().min(1).optional(),
  NEXA_DATABASE_URL: z.string().min(1).optional(),
  NEXA_BLOB_URL: z.string().min(1).optional(),
  NEXA_HOST: z.string().min(1).optional(),
  NEXA_PORT: num.int().min(0).max(65_535).optional(),
  NEXA_LEASE_TTL_S: num.positive().optional(),
  NEXA_HEARTBEAT_INTERVAL_S: num.positive().optional(),
  NEXA_BODY_LIMIT_BYTES: num.int().positive().optional(),
  NEXA_MAX_BLOB_BYTES: num.int().positive().optional(),
  NEXA_RATE_LIMIT_RPS: num.nonnegative().optional(),
  NEXA_PRICES_FILE: z.string().min(1).optional(),
});

/** Parses the environment, failing with a message that names the variable. */
export function parseServerEnv(env: NodeJS.ProcessEnv = process.env): z.infer<typeof ServerEnv> {
  const picked = Object.fromEntries(Object.keys(ServerEnv.shape).filter((k) => env[k] !== undefined && env[k] !== "").map((k) => [k, env[k]]));
  const r = ServerEnv.safeParse(picked);
  if (!r.success) {
    const issues = fieldIssues(r.error);
    throw new ForgeError("invalid_request", `invalid environment: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  }
  return r.data;
}

/** The default `NEXA_HOME`. */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.NEXA_HOME !== undefined && env.NEXA_HOME !== "" ? env.NEXA_HOME : join(homedir(), ".nexa");
}

/** Applies precedence (option > env > default) and loads the price table. */
export function resolveServerOptions(o: ServerOptions, env: NodeJS.ProcessEnv = process.env): ResolvedServerOptions {
  const e = parseServerEnv(env);
  const home = o.home ?? e.NEXA_HOME ?? defaultHome(env);
  const blobUrl = o.blobUrl ?? e.NEXA_BLOB_URL ?? `file:${join(home, "blobs")}`;
  if (!blobUrl.startsWith("file:")) {
    throw new ForgeError("invalid_request", `unsupported blob URL ${JSON.stringify(blobUrl)}: this build stores blobs on the filesystem (file:<dir>)`);
  }
  const leaseTtlS = o.leaseTtlS ?? e.NEXA_LEASE_TTL_S ?? 30;
  const heartbeatS = o.heartbeatIntervalS ?? e.NEXA_HEARTBEAT_INTERVAL_S ?? Math.min(5, leaseTtlS / 3);
  if (heartbeatS >= leaseTtlS) throw new ForgeError("invalid_request", `heartbeat interval (${heartbeatS}s) must be shorter than the lease TTL (${leaseTtlS}s)`);
  const pricesFile = o.pricesFile ?? e.NEXA_PRICES_FILE ?? join(home, "prices.json");
  return {
    home,
    databaseUrl: o.databaseUrl ?? e.NEXA_DATABASE_URL ?? `sqlite:${join(home, "forge.db")}`,
    blobDir: blobUrl.slice("file:".length),
    host: o.host ?? e.NEXA_HOST ?? "127.0.0.1",
    port: o.port ?? e.NEXA_PORT ?? 8000,
    leaseTtlMs: leaseTtlS * 1000,
    heartbeatIntervalMs: heartbeatS * 1000,
    bodyLimitBytes: o.bodyLimitBytes ?? e.NEXA_BODY_LIMIT_BYTES ?? 4 * 1024 * 1024,
    maxBlobBytes: o.maxBlobBytes ?? e.NEXA_MAX_BLOB_BYTES ?? 10 * 1024 ** 3,
    rateLimitRps: o.rateLimitRps ?? e.NEXA_RATE_LIMIT_RPS ?? 1000,
    prices: loadPrices(pricesFile, o.pricesFile !== undefined || e.NEXA_PRICES_FILE !== undefined),
    pricesFile,
    logRequests: o.logRequests ?? false,
    writeCredentials: o.writeCredentials ?? true,
    gateway: resolveGatewayOptions(o.gateway, env),
  };
}

/** Reads a price table; a missing default file means the built-in prices. */
export function loadPrices(path: string, required: boolean): PriceTable {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === "ENOENT") return DEFAULT_PRICES;
    throw new ForgeError("invalid_request", `cannot read price table ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ForgeError("invalid_request", `price table ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const r = PriceTable.safeParse(raw);
  if (!r.success) throw new ForgeError("invalid_request", `invalid price table ${path}: ${fieldIssues(r.error).map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  return r.data;
}
