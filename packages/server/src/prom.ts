import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Kysely } from "kysely";
import { sql } from "kysely";
import type { Database } from "./store/index.js";

/** Prometheus metrics of the control plane, served at `GET /metrics`. */
export class PromMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<"method" | "route" | "status">;
  readonly claimLatency: Histogram;
  readonly claimWait: Histogram;
  readonly jobDuration: Histogram<"type" | "status">;
  readonly jobsFinished: Counter<"type" | "status">;

  constructor(db: Kysely<Database>) {
    // Node.js process metrics under their standard names with our prefix: nexa_process_cpu_seconds_total, nexa_nodejs_eventloop_lag_seconds.
    collectDefaultMetrics({ register: this.registry, prefix: "nexa_" });
    this.httpDuration = new Histogram({
      name: "nexa_http_request_duration_seconds",
      help: "HTTP request durations by route.",
      labelNames: ["method", "route", "status"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers: [this.registry],
    });
    this.claimLatency = new Histogram({
      name: "nexa_claim_latency_seconds",
      help: "Time from a job becoming claimable (submit or retry due) to its claim.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 300],
      registers: [this.registry],
    });
    this.claimWait = new Histogram({
      name: "nexa_claim_request_seconds",
      help: "Duration of claim long-polls, including the wait.",
      buckets: [0.001, 0.01, 0.1, 1, 5, 20, 60],
      registers: [this.registry],
    });
    this.jobDuration = new Histogram({
      name: "nexa_job_duration_seconds",
      help: "Job durations from first start to finish, by type and final status.",
      labelNames: ["type", "status"],
      buckets: [0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600],
      registers: [this.registry],
    });
    this.jobsFinished = new Counter({ name: "nexa_jobs_finished_total", help: "Jobs reaching a terminal status.", labelNames: ["type", "status"], registers: [this.registry] });
    new Gauge({
      name: "nexa_queue_jobs",
      help: "Jobs by status and type (all orgs).",
      labelNames: ["status", "type"],
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows = await db.selectFrom("jobs").select(["status", "type", sql<number>`count(*)`.as("n")]).groupBy(["status", "type"]).execute();
        for (const r of rows) this.set({ status: r.status, type: r.type }, Number(r.n));
      },
    });
    new Gauge({
      name: "nexa_workers_online",
      help: "Workers currently registered and online.",
      registers: [this.registry],
      async collect() {
        const r = await db.selectFrom("workers").select(sql<number>`count(*)`.as("n")).where("status", "=", "online").executeTakeFirst();
        this.set(Number(r?.n ?? 0));
      },
    });
  }
}
