// The control plane from the built package, as its own process: options as JSON in argv[2];
// prints {url, adminKey} once listening; SIGTERM closes it and prints {cpu_ms} (its CPU time).
import { startServer } from "../../packages/server/dist/index.js";

const server = await startServer(JSON.parse(process.argv[2] ?? "{}"));
process.stdout.write(JSON.stringify({ url: server.url, adminKey: server.adminKey }) + "\n");
process.once("SIGTERM", () => {
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ cpu_ms: Math.round((cpu.user + cpu.system) / 1000) }) + "\n", () => void server.close().then(() => process.exit(0)));
});
