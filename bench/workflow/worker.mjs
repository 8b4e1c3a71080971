#!/usr/bin/env node
// One WorkerAgent in its own process (so it does not share the control plane's event loop),
// for bench-workflow.mjs. Usage: node worker.mjs URL KEY NAME CONCURRENCY WORKDIR
import { WorkerAgent } from "../../packages/worker/dist/index.js";

const [url, apiKey, name, concurrency, workdir] = process.argv.slice(2);
const agent = new WorkerAgent({ url, apiKey, name, concurrency: Number(concurrency), gpus: 0, workdir, graceMs: 1000, claimWaitS: 20 });
await agent.start();
process.stdout.write("ready\n");
const stop = () => void agent.stop().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
