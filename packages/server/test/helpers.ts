import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { ForgeClient } from "@nexa/sdk";
import { startServer, type RunningServer, type ServerOptions } from "@nexa/server";

/** PostgreSQL used by tests; override with NEXA_TEST_PG_URL. */
export const PG_URL = process.env.NEXA_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

let pgReachable: boolean | undefined;

/** Whether the test PostgreSQL answers. In CI it must: a missing server fails loudly. */
export async function postgresAvailable(): Promise<boolean> {
  if (pgReachable !== undefined) return pgReachable;
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query("select 1");
    pgReachable = true;
  } catch (err) {
    if (process.env.CI === "true") throw new Error(`CI needs PostgreSQL at ${PG_URL}: ${(err as Error).message}`);
    console.warn(`PostgreSQL tests skipped: nothing answers at ${PG_URL}. Start PostgreSQL or set NEXA_TEST_PG_URL to enable them.`);
    pgReachable = false;
  } finally {
    await c.end().catch(() => {});
  }
  return pgReachable;
}

/** A fresh, empty PostgreSQL database for one test file; dropped by the returned function. */
export async function freshPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `nexa_t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** One store backend under test. */
export interface TestBackend {
  name: "sqlite" | "postgres";
  /** A new database URL (and its temp home) for a server. */
  create(): Promise<{ home: string; databaseUrl: string; cleanup: () => Promise<void> }>;
}

/** The backends every shared suite runs against. */
export const BACKENDS: TestBackend[] = [
  {
    name: "sqlite",
    async create() {
      const home = mkdtempSync(join(tmpdir(), "nexa-test-"));
      return { home, databaseUrl: `sqlite:${join(home, "forge.db")}`, cleanup: async () => rmSync(home, { recursive: true, force: true }) };
    },
  },
  {
    name: "postgres",
    async create() {
      const home = mkdtempSync(join(tmpdir(), "nexa-test-"));
      const db = await freshPgDatabase();
      return {
        home,
        databaseUrl: db.url,
        cleanup: async () => {
          await db.drop();
          rmSync(home, { recursive: true, force: true });
        },
      };
    },
  },
];

/** A started server with an admin client. */
export interface TestServer {
  server: RunningServer;
  client: ForgeClient;
  home: string;
  databaseUrl: string;
  close(): Promise<void>;
}

/** Starts a real server on an ephemeral port for a backend. */
export async function startTestServer(backend: TestBackend, options: ServerOptions = {}): Promise<TestServer> {
  const env = await backend.create();
  const server = await startServer({ home: env.home, databaseUrl: env.databaseUrl, port: 0, rateLimitRps: 0, ...options });
  const client = new ForgeClient({ url: server.url, apiKey: server.adminKey });
  return {
    server,
    client,
    home: env.home,
    databaseUrl: env.databaseUrl,
    async close() {
      await server.close();
      await env.cleanup();
    },
  };
}

/**
 * The server of one backend's `describe` block: started before its tests and closed after them.
 * `skip` is true (and nothing starts) for PostgreSQL when no server answers; `t` is filled in
 * before the first test runs.
 */
export function serverForSuite(backend: TestBackend, havePg: boolean, options: ServerOptions = {}): { skip: boolean; t: TestServer } {
  const skip = backend.name === "postgres" && !havePg;
  const t = {} as TestServer;
  beforeAll(async () => {
    if (!skip) Object.assign(t, await startTestServer(backend, options));
  });
  afterAll(async () => {
    await t.close?.();
  });
  return { skip, t };
}

/** A CPU-only worker capability set. */
export const CPU_WORKER = { cpus: 4, memory_gb: 8, gpus: [], labels: {} };

/** A plain HTTP answer, for tests that check statuses, headers and error bodies directly. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body when it is JSON, else undefined. */
  json: any;
}

/** Sends one request without the SDK (which throws on non-2xx). */
export async function http(
  base: string,
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; rawBody?: BodyInit; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key !== undefined) headers.authorization = `Bearer ${opts.key}`;
  let body: BodyInit | undefined = opts.rawBody;
  if (opts.body !== undefined) {
    headers["content-type"] ??= "application/json";
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  }
  const res = await fetch(base + path, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    ...(body !== undefined && typeof (body as ReadableStream).getReader === "function" ? { duplex: "half" } : {}),
  } as RequestInit);
  const text = await res.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Whether an answer carries the wire error shape `{error:{code,message}}`. */
export function isErrorBody(json: unknown): boolean {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return typeof e === "object" && e !== null && typeof e.code === "string" && typeof e.message === "string";
}

/** Creates a second org with the instance admin key; returns its admin key and a client. */
export async function createOrg(t: TestServer, name: string): Promise<{ id: string; key: string; client: ForgeClient }> {
  const org = await t.client.createOrg(name);
  return { id: org.id, key: org.key!, client: t.client.withKey(org.key!) };
}
