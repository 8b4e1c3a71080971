import { join } from "node:path";
import type { RunningServer, ServerOptions } from "@nexa/server";
import type { Command } from "commander";
import pc from "picocolors";
import { parseAccepts, parseGpus, parseLabels } from "./worker.js";

interface ServerFlags {
  host?: string;
  port?: string;
  home?: string;
  databaseUrl?: string;
  blobUrl?: string;
  leaseTtl?: string;
  prices?: string;
  rateLimit?: string;
  logRequests?: boolean;
}

interface UpFlags extends ServerFlags {
  concurrency?: string;
  gpus?: string;
  labels?: string;
  accepts?: string;
  worker?: boolean;
}

function num(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: expected a non-negative number, got ${JSON.stringify(text)}`);
  return n;
}

/** Flags → server options (flags beat env beat defaults; env is read by the server itself). */
export function serverOptionsFrom(flags: ServerFlags): ServerOptions {
  const o: ServerOptions = {};
  if (flags.home !== undefined) o.home = flags.home;
  if (flags.host !== undefined) o.host = flags.host;
  const port = num("--port", flags.port);
  if (port !== undefined) o.port = port;
  if (flags.databaseUrl !== undefined) o.databaseUrl = flags.databaseUrl;
  if (flags.blobUrl !== undefined) o.blobUrl = flags.blobUrl;
  const ttl = num("--lease-ttl", flags.leaseTtl);
  if (ttl !== undefined) o.leaseTtlS = ttl;
  if (flags.prices !== undefined) o.pricesFile = flags.prices;
  const rl = num("--rate-limit", flags.rateLimit);
  if (rl !== undefined) o.rateLimitRps = rl;
  if (flags.logRequests) o.logRequests = true;
  return o;
}

function addServerOptions(cmd: Command): Command {
  return cmd
    .option("--host <host>", "interface to listen on (env NEXA_HOST)", undefined)
    .option("--port <port>", "port; 0 picks a free one (env NEXA_PORT; default 8000)")
    .option("--home <dir>", "embedded install folder: forge.db, blobs/, work/, credentials (env NEXA_HOME; default ~/.nexa)")
    .option("--database-url <url>", "sqlite:<path> or postgres://… (env NEXA_DATABASE_URL; default sqlite:$NEXA_HOME/forge.db)")
    .option("--blob-url <url>", "file:<dir> (env NEXA_BLOB_URL; default file:$NEXA_HOME/blobs)")
    .option("--lease-ttl <seconds>", "lease time-to-live (env NEXA_LEASE_TTL_S; default 30)")
    .option("--prices <file>", "price table JSON (env NEXA_PRICES_FILE; default $NEXA_HOME/prices.json when present)")
    .option("--rate-limit <rps>", "default per-key requests/s; 0 disables (env NEXA_RATE_LIMIT_RPS; default 1000)")
    .option("--log-requests", "log every HTTP request to stderr");
}

function announce(server: RunningServer): void {
  const o = server.options;
  process.stdout.write(
    [
      `${pc.bold("Nexa Forge")} control plane listening on ${pc.cyan(server.url)}`,
      `  database     ${o.databaseUrl.replace(/\/\/([^:@/]+):[^@]+@/, "//$1:***@")}`,
      `  blobs        ${o.blobDir}`,
      `  admin key    ${server.adminKey !== undefined ? `written to ${server.credentialsPath} (mode 0600)` : "not in this home: use the key you were given"}`,
      `  API docs     ${server.url}/openapi.json   metrics ${server.url}/metrics`,
      "",
    ].join("\n"),
  );
}

async function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(sig);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** Registers `nexa up`, `nexa server` and `nexa migrate`. */
export function registerControlPlaneCommands(program: Command): void {
  addServerOptions(
    program
      .command("up")
      .description("Start the control plane with one local worker attached (everything embedded: SQLite, blobs on disk).")
      .option("--concurrency <n>", "jobs the local worker runs at once", "2")
      .option("--gpus <auto|N>", "GPUs of the local worker", "auto")
      .option("--labels <k=v,...>", "labels of the local worker")
      .option("--accepts <types>", "job types the local worker runs")
      .option("--no-worker", "start no local worker"),
  ).action(async (flags: UpFlags) => {
    // Heavy modules load only for the commands that need them, so `nexa jobs list` starts fast.
    const { startServer } = await import("@nexa/server");
    const { WorkerAgent } = await import("@nexa/worker");
    const server = await startServer(serverOptionsFrom(flags));
    announce(server);
    let agent: InstanceType<typeof WorkerAgent> | undefined;
    if (flags.worker !== false) {
      const accepts = parseAccepts(flags.accepts);
      agent = new WorkerAgent({
        url: server.url,
        ...(server.adminKey !== undefined ? { apiKey: server.adminKey } : {}),
        name: "local",
        concurrency: Number(flags.concurrency ?? 2),
        gpus: parseGpus(flags.gpus),
        labels: parseLabels(flags.labels),
        ...(accepts ? { accepts } : {}),
        workdir: join(server.options.home, "work"),
        log: (line) => process.stdout.write(`${pc.dim("[worker]")} ${line}\n`),
      });
      await agent.start();
    }
    process.stdout.write(pc.dim("Ctrl-C to stop.\n"));
    const sig = await untilSignal();
    process.stdout.write(`${sig}: stopping…\n`);
    await agent?.stop();
    await server.close();
  });

  addServerOptions(program.command("server").description("Start the control plane alone; attach workers with `nexa worker`.")).action(async (flags: ServerFlags) => {
    const { startServer } = await import("@nexa/server");
    const server = await startServer(serverOptionsFrom(flags));
    announce(server);
    const sig = await untilSignal();
    process.stdout.write(`${sig}: stopping…\n`);
    await server.close();
  });

  program
    .command("migrate")
    .description("Apply pending database migrations and exit (the server also migrates at start).")
    .option("--home <dir>", "embedded install folder (env NEXA_HOME)")
    .option("--database-url <url>", "sqlite:<path> or postgres://… (env NEXA_DATABASE_URL)")
    .option("--json", "print JSON")
    .action(async (flags: { home?: string; databaseUrl?: string; json?: boolean }) => {
      const { migrate, openBackend, resolveServerOptions } = await import("@nexa/server");
      const o = resolveServerOptions({ ...(flags.home ? { home: flags.home } : {}), ...(flags.databaseUrl ? { databaseUrl: flags.databaseUrl } : {}) });
      const backend = openBackend(o.databaseUrl);
      try {
        const r = await migrate(backend);
        if (flags.json) process.stdout.write(JSON.stringify(r) + "\n");
        else process.stdout.write(r.applied.length === 0 ? `schema up to date (${r.current})\n` : `applied ${r.applied.join(", ")}\n`);
      } finally {
        await backend.close();
      }
    });
}
