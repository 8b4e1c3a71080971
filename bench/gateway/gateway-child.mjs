// The control plane of bench/gateway, from the built package, as its own process: argv[2] is
// {home, databaseUrl, upstream}; registers a healthy deployment `bench-model` at the upstream, prints
// {url, adminKey} once listening; SIGTERM closes it (flushing the request records) and prints to
// stderr the event-loop delay it saw and how long the record flushes took.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { newId, startServer } from "../../packages/server/dist/index.js";

const { home, databaseUrl, upstream } = JSON.parse(process.argv[2]);
const server = await startServer({ home, databaseUrl, port: 0, rateLimitRps: 0, writeCredentials: false });
const org = await server.ctx.db.selectFrom("orgs").select("id").where("name", "=", "default").executeTakeFirstOrThrow();
const now = Date.now();
await server.ctx.db
  .insertInto("deployments")
  .values({ id: newId("dep"), org_id: org.id, project: "bench", name: "bench-model", job_id: newId("job"), submission: "{}", worker_id: null, url: upstream, backend: "torch", status: "healthy", restarts: 0, error: null, created_at: now, updated_at: now, stopped_at: null })
  .execute();
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
const flushes = [];
const recorder = server.gateway.recorder;
const write = recorder.write.bind(recorder);
recorder.write = async (batch, ...rest) => {
  const t = performance.now();
  await write(batch, ...rest);
  flushes.push([batch.length, performance.now() - t]);
};
process.stdout.write(JSON.stringify({ url: server.url, adminKey: server.adminKey }) + "\n");
process.once("SIGTERM", () => {
  loop.disable();
  const ms = (ns) => (ns / 1e6).toFixed(1);
  const f = flushes.map(([, t]) => t).sort((a, b) => a - b);
  process.stderr.write(
    `control plane: event-loop delay p50 ${ms(loop.percentile(50))} p99 ${ms(loop.percentile(99))} max ${ms(loop.max)} ms; ` +
      `${flushes.length} record flushes of ${flushes.reduce((s, [n]) => s + n, 0)} records, p50 ${(f[Math.floor(f.length / 2)] ?? 0).toFixed(1)} max ${(f.at(-1) ?? 0).toFixed(1)} ms\n`,
  );
  void server.close().then(() => process.exit(0));
});
