// The control plane of segments.mjs: server-child.mjs with timestamps (CLOCK_MONOTONIC, ms, the
// same clock in every process of this machine) for each HTTP request's arrival, each response's
// end() and each PostgreSQL query's start and answer; written to $SEGMENTS_OUT on SIGTERM.
import http from "node:http";
import { writeFileSync } from "node:fs";
import pg from "pg";
import { startServer } from "../../packages/server/dist/index.js";

const now = () => Number(process.hrtime.bigint()) / 1e6;
const events = [];
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (...a) {
  const t0 = now();
  const text = String(typeof a[0] === "string" ? a[0] : a[0]?.text).replace(/\s+/g, " ").slice(0, 40);
  const r = query.apply(this, a);
  if (r && typeof r.then === "function") r.then(() => events.push(["query", t0, now(), text]), () => {});
  return r;
};
const end = http.ServerResponse.prototype.end;
http.ServerResponse.prototype.end = function (...a) {
  events.push(["end", now(), `${this.req?.method} ${this.req?.url}`]);
  return end.apply(this, a);
};
const server = await startServer(JSON.parse(process.argv[2] ?? "{}"));
server.app.server.prependListener("request", (req) => events.push(["request", now(), `${req.method} ${req.url}`]));
process.stdout.write(JSON.stringify({ url: server.url, adminKey: server.adminKey }) + "\n");
process.once("SIGTERM", () => {
  writeFileSync(process.env.SEGMENTS_OUT, JSON.stringify(events));
  void server.close().then(() => process.exit(0));
});
