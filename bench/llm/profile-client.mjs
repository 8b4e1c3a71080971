#!/usr/bin/env node
// bench/llm/profile-client.mjs: one client alone at concurrency 256 against the stand-in, for profiling the
// client path: `node --cpu-prof bench/llm/profile-client.mjs ours 4` (or `bare`, the undici Pool of the ceiling).
// Prints requests/s and client-process CPU µs per request.
import { spawn } from "node:child_process";
import { Pool } from "undici";
import { OpenAIClient } from "../../packages/llm/dist/index.js";

const which = process.argv[2] ?? "ours";
const seconds = Number(process.argv[3] ?? 4);
const C = 256;
const child = spawn(process.execPath, [new URL("./stand-in.mjs", import.meta.url).pathname], { stdio: ["ignore", "pipe", "inherit"] });
const baseUrl = await new Promise((resolve) => child.stdout.once("data", (d) => resolve(String(d).trim())));
let seq = 0;
const body = () => ({ model: "bench", messages: [{ role: "user", content: `bench request ${seq++}` }], temperature: 0 });
let send;
let close;
if (which === "ours") {
  const client = new OpenAIClient({ baseUrl, model: "bench", maxConcurrency: C });
  send = async () => {
    if (!(await client.chat(body())).text) throw new Error("empty reply");
  };
  close = () => client.close();
} else {
  const url = new URL(baseUrl);
  const pool = new Pool(url.origin, { connections: C, pipelining: 1 });
  send = async () => {
    const r = await pool.request({ path: `${url.pathname}/chat/completions`, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body()) });
    await r.body.text();
  };
  close = () => pool.close();
}
// One second unmeasured: connections open and the JIT settles before the measured window.
const warmEnd = performance.now() + 1000;
await Promise.all(Array.from({ length: C }, async () => {
  while (performance.now() < warmEnd) await send();
}));
let done = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const end = t0 + seconds * 1000;
await Promise.all(Array.from({ length: C }, async () => {
  while (performance.now() < end) {
    await send();
    done++;
  }
}));
const s = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(`${which}: ${(done / s).toFixed(0)} req/s, ${((cpu.user + cpu.system) / done).toFixed(1)} µs CPU/req`);
await close();
child.kill();
