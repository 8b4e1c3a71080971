import type { Kysely } from "kysely";
import type { Dialect } from "./migrations.js";

/** Migrations of the workflow engine's tables (merged into the one numbered list). */
export const WORKFLOW_MIGRATIONS: Record<string, (db: Kysely<any>, dialect: Dialect) => Promise<void>> = {
  "0004_workflows": async (db) => {
    await db.schema
      .createTable("workflow_runs")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("spec", "text", (c) => c.notNull())
      .addColumn("inputs", "text", (c) => c.notNull())
      .addColumn("outputs", "text", (c) => c.notNull())
      .addColumn("resume_from", "text")
      .addColumn("no_cache", "integer", (c) => c.notNull())
      .addColumn("failing", "integer", (c) => c.notNull())
      .addColumn("error", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("finished_at", "bigint")
      .execute();
    await db.schema.createIndex("workflow_runs_org").on("workflow_runs").columns(["org_id", "id"]).execute();
    await db.schema.createIndex("workflow_runs_status").on("workflow_runs").columns(["status"]).execute();
    await db.schema
      .createTable("workflow_steps")
      .addColumn("run_id", "text", (c) => c.notNull())
      .addColumn("step", "text", (c) => c.notNull())
      .addColumn("idx", "integer", (c) => c.notNull())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("job_id", "text")
      .addColumn("cache_key", "text")
      .addColumn("cache_hit", "integer", (c) => c.notNull())
      .addColumn("reused", "integer", (c) => c.notNull())
      .addColumn("skipped", "integer", (c) => c.notNull())
      .addColumn("matrix_values", "text")
      .addColumn("outputs", "text", (c) => c.notNull())
      .addColumn("error", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("finished_at", "bigint")
      .addPrimaryKeyConstraint("workflow_steps_pk", ["run_id", "step", "idx"])
      .execute();
    await db.schema.createIndex("workflow_steps_job").on("workflow_steps").columns(["job_id"]).execute();
    await db.schema.createIndex("workflow_steps_cache").on("workflow_steps").columns(["org_id", "cache_key", "status"]).execute();
    await db.schema
      .createTable("step_cache")
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("cache_key", "text", (c) => c.notNull())
      .addColumn("job_id", "text", (c) => c.notNull())
      .addColumn("outputs", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("step_cache_pk", ["org_id", "cache_key"])
      .execute();
  },
};
