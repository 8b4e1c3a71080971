#!/usr/bin/env node
// Added latency of the Nexa Forge gateway beside nginx proxy_pass, measured in the same run.
//
//   npx tsc -b packages/server && flock /tmp/nexa-bench.lock node bench/gateway/run.mjs [--rate=500] [--seconds=20] [--rounds=4] [--warmup=2] [--backend=sqlite|postgres] [--json=OUT] [--prof=DIR]
//
// One upstream (upstream.mjs: node:http answering a fixed chat completion, its own process) is
// called three ways at the same fixed request rate, open loop (requests are sent on schedule
// whether or not earlier ones have answered):
//   direct   POST <upstream>/v1/chat/completions
//   gateway  POST <control plane>/v1/gateway/chat/completions, model = a healthy deployment at the
//            upstream (gateway-child.mjs: the built packages/server, SQLite, its own process) — key
//            auth, model resolution, rpm/tpm check, undici keep-alive forward, usage parse, record
//   nginx    POST <nginx>/v1/chat/completions, proxy_pass to the upstream with upstream keep-alive
//            (nginx from the Debian package, one worker, a generated config, run as a child process)
// The time is split into --rounds slices and the three take turns (order rotated each round) so load
// drift on a shared machine falls on all of them alike. Latency is from the request's send to the
// last byte of its answer, over keep-alive connections. Added = target percentile − direct percentile.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freshPgDatabase } from "../lib/fresh-pg.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")).map(([k, v]) => [k, v ?? "1"]));
const RATE = Number(args.rate ?? 500);
const SECONDS = Number(args.seconds ?? 20);
const ROUNDS = Number(args.rounds ?? 4);
const WARMUP = Number(args.warmup ?? 2);
const NGINX = args.nginx ?? "/usr/sbin/nginx";

if (!existsSync(join(here, "../../packages/server/dist/index.js"))) throw new Error("build first: npx tsc -b packages/server");
if (!existsSync(NGINX)) throw new Error(`nginx not found at ${NGINX}: apt-get install -y nginx (or pass --nginx=PATH)`);

const log = (...a) => process.stderr.write(a.join(" ") + "\n");
const pct = (s, p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const children = [];

/** Starts a child process and resolves with the first JSON line it prints. */
function child(cmd, argv) {
  const p = spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(p);
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: p.stdout });
    rl.once("line", (line) => resolve(JSON.parse(line)));
    p.once("exit", (c) => reject(new Error(`${cmd} exited ${c}`)));
  });
}

async function waitForPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), r(true)));
      s.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function startNginx(upstreamPort) {
  const dir = mkdtempSync(join(tmpdir(), "nexa-bench-nginx-"));
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, d));
  const port = await freePort();
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off;
${process.getuid?.() === 0 ? "user root;" : ""}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  upstream bench_upstream { server 127.0.0.1:${upstreamPort}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const p = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf")], { stdio: ["ignore", "inherit", "inherit"] });
  children.push(p);
  await waitForPort(port);
  return { url: `http://127.0.0.1:${port}`, dir };
}

/** A target: base URL, path, headers, body. Keep-alive agent per target. */
function target(name, base, path, headers, body) {
  const u = new URL(base);
  const data = JSON.stringify(body);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512, keepAliveMsecs: 60_000 });
  const h = { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...headers };
  return {
    name,
    send(cb) {
      const t = performance.now();
      let called = false;
      const finish = (ok) => {
        if (called) return;
        called = true;
        cb(ok, performance.now() - t);
      };
      const req = http.request({ host: u.hostname, port: u.port, method: "POST", path, agent, headers: h }, (res) => {
        res.on("data", () => {});
        res.on("end", () => finish(res.statusCode === 200));
      });
      req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
      req.on("error", () => finish(false));
      req.end(data);
    },
  };
}

/** Sends `rate` requests a second for `seconds`, on schedule; resolves with the latencies. */
function openLoop(tg, rate, seconds) {
  const n = Math.max(1, Math.round(rate * seconds));
  const lat = [];
  let errors = 0;
  let done = 0;
  let i = 0;
  const t0 = performance.now() + 5;
  const gap = 1000 / rate;
  return new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < n && t0 + i * gap <= now) {
        i++;
        tg.send((ok, ms) => {
          if (ok) lat.push(ms);
          else errors++;
          if (++done === n) resolve({ lat, errors, wallS: (performance.now() - t0) / 1000 });
        });
      }
      if (i < n) setTimeout(tick, Math.max(0, t0 + i * gap - performance.now()));
    };
    tick();
  });
}

let home;
let dropPg;
try {
  const load0 = loadavg();
  const up = await child(process.execPath, [join(here, "upstream.mjs")]);
  const upstream = `http://127.0.0.1:${up.port}`;
  home = mkdtempSync(join(tmpdir(), "nexa-bench-gw-"));
  // --backend=postgres: the control plane's store on a fresh PostgreSQL database (NEXA_BENCH_PG admin URL).
  let databaseUrl = `sqlite:${join(home, "forge.db")}`;
  if (args.backend === "postgres") {
    const db = await freshPgDatabase("nexa_bench_gw");
    databaseUrl = db.url;
    dropPg = db.drop;
  }
  // --prof=DIR: a V8 CPU profile of the control plane process, written there when it exits.
  const profFlags = args.prof ? ["--cpu-prof", `--cpu-prof-dir=${args.prof}`] : [];
  const gw = await child(process.execPath, [...profFlags, join(here, "gateway-child.mjs"), JSON.stringify({ home, databaseUrl, upstream })]);
  const ngx = await startNginx(up.port);
  const nginxVersion = spawnSync(NGINX, ["-v"], { encoding: "utf8" }).stderr.trim().replace(/^nginx version: /, "") || "nginx";
  const body = { model: "bench-model", messages: [{ role: "user", content: "Say something about foxes." }], max_tokens: 16 };
  const targets = [
    target("direct", upstream, "/v1/chat/completions", {}, body),
    target("gateway", gw.url, "/v1/gateway/chat/completions", { authorization: `Bearer ${gw.adminKey}` }, body),
    target("nginx", ngx.url, "/v1/chat/completions", {}, body),
  ];
  log(`upstream ${upstream} · gateway ${gw.url} · nginx ${ngx.url}; ${RATE} req/s, ${SECONDS} s each in ${ROUNDS} rounds, ${WARMUP} s warm-up each; load ${load0.map((x) => x.toFixed(2)).join(" ")} on ${cpus().length} CPUs`);
  for (const tg of targets) {
    const w = await openLoop(tg, RATE, WARMUP);
    if (w.errors > 0) throw new Error(`${tg.name}: ${w.errors} errors in the warm-up`);
  }
  const results = Object.fromEntries(targets.map((t) => [t.name, { lat: [], errors: 0, wallS: 0 }]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = targets.map((_, k) => targets[(k + r) % targets.length]);
    for (const tg of order) {
      const res = await openLoop(tg, RATE, SECONDS / ROUNDS);
      results[tg.name].lat.push(...res.lat);
      results[tg.name].errors += res.errors;
      results[tg.name].wallS += res.wallS;
    }
    log(`round ${r + 1}/${ROUNDS} done`);
  }
  const load1 = loadavg();
  const stats = {};
  for (const [name, r] of Object.entries(results)) {
    const s = Float64Array.from(r.lat).sort();
    stats[name] = { n: s.length, errors: r.errors, achieved_rps: round(s.length / r.wallS, 1), p50: round(pct(s, 50)), p90: round(pct(s, 90)), p99: round(pct(s, 99)), max: round(s[s.length - 1]) };
  }
  const added = (name, p) => round(stats[name][p] - stats.direct[p]);
  const out = {
    when: new Date().toISOString(),
    rate: RATE,
    seconds: SECONDS,
    rounds: ROUNDS,
    cpus: cpus().length,
    load_before: load0.map((x) => round(x, 2)),
    load_after: load1.map((x) => round(x, 2)),
    nginx: nginxVersion,
    backend: args.backend ?? "sqlite",
    stats,
    added_ms: { gateway: { p50: added("gateway", "p50"), p99: added("gateway", "p99") }, nginx: { p50: added("nginx", "p50"), p99: added("nginx", "p99") } },
  };
  out.ratio = { p50: round(out.added_ms.gateway.p50 / out.added_ms.nginx.p50, 2), p99: round(out.added_ms.gateway.p99 / out.added_ms.nginx.p99, 2) };
  const rows = [
    ["", "n", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"],
    ...Object.entries(stats).map(([k, s]) => [k, s.n, s.errors, s.achieved_rps, s.p50, s.p90, s.p99, s.max]),
  ];
  for (const r of rows) console.log(r.map((c, i) => String(c).padStart(i === 0 ? 8 : 9)).join(" "));
  console.log(`\nadded over direct   p50        p99`);
  console.log(`  Nexa gateway      ${out.added_ms.gateway.p50} ms   ${out.added_ms.gateway.p99} ms`);
  console.log(`  nginx proxy_pass  ${out.added_ms.nginx.p50} ms   ${out.added_ms.nginx.p99} ms   (${nginxVersion})`);
  console.log(`  ratio ours/nginx  ${out.ratio.p50}×       ${out.ratio.p99}×`);
  console.log(`  target            ≤ 1 ms p50 (${out.added_ms.gateway.p50 <= 1 ? "met" : "not met"}), ≤ 5 ms p99 (${out.added_ms.gateway.p99 <= 5 ? "met" : "not met"})`);
  console.log(`load average ${load0.map((x) => x.toFixed(2)).join(" ")} → ${load1.map((x) => x.toFixed(2)).join(" ")} on ${cpus().length} CPUs`);
  if (args.json) writeFileSync(args.json, JSON.stringify(out, null, 2) + "\n");
} finally {
  for (const p of children.reverse()) {
    if (p.exitCode === null) {
      p.kill("SIGTERM");
      await new Promise((r) => {
        const t = setTimeout(() => (p.kill("SIGKILL"), r()), 5000);
        p.once("exit", () => (clearTimeout(t), r()));
      });
    }
  }
  if (home) rmSync(home, { recursive: true, force: true });
  await dropPg?.();
}
