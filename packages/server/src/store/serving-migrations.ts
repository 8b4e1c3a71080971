import { sql, type Kysely } from "kysely";
import type { Dialect } from "./migrations.js";

/**
 * Migrations of the serving tables — deployments (models served by `deploy` jobs) and the
 * gateway (routes, per-request records, per-key rpm/tpm limits) — merged into the one numbered list.
 */
export const SERVING_MIGRATIONS: Record<string, (db: Kysely<any>, dialect: Dialect) => Promise<void>> = {
  "0006_deployments": async (db) => {
    await db.schema
      .createTable("deployments")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("project", "text", (c) => c.notNull())
      // The model name clients use (`deploy` spec `name`); the gateway routes by it.
      .addColumn("name", "text", (c) => c.notNull())
      // The `deploy` job now backing it (a new one when it is started again on another worker).
      .addColumn("job_id", "text", (c) => c.notNull())
      // The submission that started it ({type, spec, requirements, limits, ...}), to start it again.
      .addColumn("submission", "text", (c) => c.notNull())
      .addColumn("worker_id", "text")
      .addColumn("url", "text")
      .addColumn("backend", "text")
      // starting | healthy | unhealthy | stopping | stopped | failed
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("restarts", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("error", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addColumn("stopped_at", "bigint")
      .execute();
    await db.schema.createIndex("deployments_org_name").on("deployments").columns(["org_id", "name", "status"]).execute();
    await db.schema.createIndex("deployments_job").on("deployments").columns(["job_id"]).execute();
    await db.schema.createIndex("deployments_worker").on("deployments").columns(["worker_id", "status"]).execute();
  },
  "0007_gateway": async (db) => {
    await db.schema
      .createTable("gateway_routes")
      .addColumn("org_id", "text", (c) => c.notNull())
      // The model name a caller sends.
      .addColumn("name", "text", (c) => c.notNull())
      // JSON list of weighted targets: a deployment by name, or an external provider.
      .addColumn("targets", "text", (c) => c.notNull())
      .addColumn("sticky", "integer", (c) => c.notNull().defaultTo(1))
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("gateway_routes_pk", ["org_id", "name"])
      .execute();
    await db.schema
      .createTable("gateway_requests")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("key_id", "text")
      .addColumn("route", "text", (c) => c.notNull())
      .addColumn("variant", "text")
      .addColumn("upstream", "text")
      .addColumn("endpoint", "text", (c) => c.notNull())
      .addColumn("user_id", "text")
      .addColumn("status", "integer", (c) => c.notNull())
      .addColumn("error_code", "text")
      .addColumn("stream", "integer", (c) => c.notNull())
      .addColumn("latency_ms", "double precision", (c) => c.notNull())
      .addColumn("upstream_ms", "double precision")
      .addColumn("tokens_in", "bigint", (c) => c.notNull())
      .addColumn("tokens_out", "bigint", (c) => c.notNull())
      .addColumn("ts", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("gateway_requests_org_ts").on("gateway_requests").columns(["org_id", "ts"]).execute();
    await db.schema.createIndex("gateway_requests_route").on("gateway_requests").columns(["org_id", "route", "ts"]).execute();
    // Per-key gateway limits (null: unlimited), beside the existing request-rate limit.
    await sql`alter table api_keys add column rpm integer`.execute(db);
    await sql`alter table api_keys add column tpm integer`.execute(db);
  },
};
