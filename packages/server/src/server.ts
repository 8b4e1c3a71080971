import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { Keys, RateLimiter } from "./auth.js";
import { FileBlobStore } from "./blobs/file-blob-store.js";
import { Bus } from "./bus.js";
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from "./config.js";
import { DeploymentRegistry } from "./deployments/registry.js";
import { deploymentRoutes } from "./deployments/routes.js";
import { Gateway, gatewayRoutes } from "./gateway/index.js";
import { buildApp, type RouteGroup } from "./http/app.js";
import type { AppContext } from "./http/context.js";
import { newId } from "./ids.js";
import { preflightDeps } from "./preflight.js";
import { PromMetrics } from "./prom.js";
import { Queue } from "./queue.js";
import { migrate, openBackend, type Backend } from "./store/index.js";
import { WorkflowEngine } from "./workflows/engine.js";
import { workflowRoutes } from "./workflows/routes.js";

/** A running control plane. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8000`. */
  url: string;
  /** The instance admin key, when this start created it or found it in the credentials file. */
  adminKey: string | undefined;
  /** Where the credentials file is. */
  credentialsPath: string;
  options: ResolvedServerOptions;
  app: FastifyInstance;
  ctx: AppContext;
  /** The workflow engine of this control plane. */
  workflows: WorkflowEngine;
  /** The OpenAI-compatible gateway (`/v1/gateway/…`). */
  gateway: Gateway;
  /** Deployments started by `deploy` jobs. */
  deployments: DeploymentRegistry;
  close(): Promise<void>;
}

/** Extra pieces other packages plug in (workflow engine, gateway). */
export interface ServerExtensions {
  routes?: RouteGroup[];
  /** Called once the store and queue exist, before listening. */
  onStart?(ctx: AppContext): Promise<void> | void;
  onStop?(): Promise<void> | void;
}

const DEFAULT_ORG = "default";

/**
 * Starts the control plane: opens and migrates the store, creates the default org and the
 * instance admin key on first start (written to `<home>/credentials`, mode 0600), starts the
 * lease sweeper and listens.
 *
 * @example
 * const server = await startServer({ home: "/tmp/forge", port: 0 });
 * console.log(server.url, server.adminKey);
 * await server.close();
 */
export async function startServer(options: ServerOptions = {}, ext: ServerExtensions = {}): Promise<RunningServer> {
  const opts = resolveServerOptions(options);
  await mkdir(opts.home, { recursive: true });
  const backend = openBackend(opts.databaseUrl);
  try {
    await migrate(backend);
  } catch (err) {
    await backend.close();
    throw err;
  }
  const { ctx, stopSweeper } = await assemble(backend, opts);
  const credentialsPath = join(opts.home, "credentials");
  const adminKey = await bootstrap(ctx, credentialsPath, opts);
  const workflows = new WorkflowEngine(ctx.db, ctx.queue, preflightDeps(ctx));
  await workflows.recover();
  const deployments = new DeploymentRegistry(ctx.db, ctx.queue, (msg, err) => {
    if (err !== undefined || opts.logRequests) console.error(err === undefined ? msg : `${msg}: ${(err as Error).message}`);
  });
  ctx.queue.observers.push(deployments.observer());
  await deployments.recover();
  const gateway = new Gateway(ctx, opts.gateway);
  gateway.start();
  await ext.onStart?.(ctx);
  const app = buildApp(ctx, [workflowRoutes(workflows), gatewayRoutes(gateway), deploymentRoutes(deployments), ...(ext.routes ?? [])]);
  const shutdown = new AbortController();
  (ctx as { shutdown: AbortSignal }).shutdown = shutdown.signal;
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : opts.port;
  const host = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  if (opts.writeCredentials && adminKey !== undefined) await writeCredentials(credentialsPath, url, adminKey);
  let closed = false;
  return {
    url,
    adminKey,
    credentialsPath,
    options: opts,
    app,
    ctx,
    workflows,
    deployments,
    gateway,
    async close() {
      if (closed) return;
      closed = true;
      shutdown.abort();
      stopSweeper();
      await workflows.stop();
      await deployments.idle();
      await ext.onStop?.();
      await app.close();
      // After the last request: the records still buffered are written before the store closes.
      await gateway.close();
      await ctx.bus.stop();
      await backend.close();
    },
  };
}

async function assemble(backend: Backend, opts: ResolvedServerOptions): Promise<{ ctx: AppContext; stopSweeper: () => void }> {
  const bus = new Bus(backend);
  await bus.start();
  const queue = new Queue(backend, bus, { leaseTtlMs: opts.leaseTtlMs, heartbeatIntervalMs: opts.heartbeatIntervalMs }, () => opts.prices);
  const metrics = new PromMetrics(backend.db);
  queue.observers.push({
    onClaimed: (_jobs, latencies) => {
      for (const l of latencies) metrics.claimLatency.observe(Math.max(0, l) / 1000);
    },
    onJobFinished: (job) => {
      metrics.jobsFinished.inc({ type: job.type, status: job.status });
      if (job.started_at !== null && job.finished_at !== null) {
        metrics.jobDuration.observe({ type: job.type, status: job.status }, (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000);
      }
    },
  });
  const ctx: AppContext = {
    options: opts,
    backend,
    db: backend.db,
    bus,
    queue,
    keys: new Keys(backend.db),
    limiter: new RateLimiter(opts.rateLimitRps),
    blobs: new FileBlobStore(opts.blobDir, opts.maxBlobBytes),
    metrics,
    shutdown: new AbortController().signal,
  };
  // Lease sweeper: expired leases put their jobs back in the queue. A short interval keeps
  // recovery well inside one TTL; each pass is one indexed query when nothing is expired.
  const everyMs = Math.max(50, Math.min(1000, opts.leaseTtlMs / 10));
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    const now = Date.now();
    Promise.all([queue.loseLeases({ expiredBefore: now }, "expired"), queue.markStaleWorkers(Math.max(60_000, 3 * opts.leaseTtlMs))])
      .catch(() => {})
      .finally(() => {
        running = false;
      });
  }, everyMs);
  timer.unref();
  return { ctx, stopSweeper: () => clearInterval(timer) };
}

/** Creates the default org and instance admin key on first start; returns the key if known. */
async function bootstrap(ctx: AppContext, credentialsPath: string, opts: ResolvedServerOptions): Promise<string | undefined> {
  const existing = await ctx.db.selectFrom("orgs").select("id").where("name", "=", DEFAULT_ORG).executeTakeFirst();
  if (existing) {
    const creds = await readCredentials(credentialsPath);
    return creds?.api_key;
  }
  const org = { id: newId("org"), name: DEFAULT_ORG, created_at: Date.now(), max_running: null, budget_usd: null };
  await ctx.db.insertInto("orgs").values(org).onConflict((oc) => oc.column("name").doNothing()).execute();
  const key = await ctx.keys.create(org.id, "instance-admin", ["admin"], { instanceAdmin: true });
  if (opts.writeCredentials) await writeCredentials(credentialsPath, `http://${opts.host}:${opts.port}`, key.key!);
  return key.key;
}

/** The credentials file: `{"url", "api_key"}`, mode 0600. */
export interface Credentials {
  url: string;
  api_key: string;
}

/** Reads `<home>/credentials`, or undefined. */
export async function readCredentials(path: string): Promise<Credentials | undefined> {
  try {
    const c = JSON.parse(await readFile(path, "utf8")) as Partial<Credentials>;
    if (typeof c.api_key === "string") return { url: c.url ?? "", api_key: c.api_key };
  } catch {
    // missing or unreadable: no credentials
  }
  return undefined;
}

async function writeCredentials(path: string, url: string, apiKey: string): Promise<void> {
  await writeFile(path, JSON.stringify({ url, api_key: apiKey }, null, 2) + "\n", { mode: 0o600 });
  await chmod(path, 0o600);
}
