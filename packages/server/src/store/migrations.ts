import { sql, type Kysely, type Migration, type MigrationProvider } from "kysely";
import { SERVING_MIGRATIONS } from "./serving-migrations.js";
import { WORKFLOW_MIGRATIONS } from "./workflow-migrations.js";

/** Which SQL dialect a store speaks. */
export type Dialect = "sqlite" | "postgres";

type Up = (db: Kysely<any>, dialect: Dialect) => Promise<void>;

/**
 * Forward-only migrations, numbered; both dialects run the same list. Never edit a released
 * migration: add the next number.
 */
const MIGRATIONS: Record<string, Up> = {
  "0001_initial": async (db, dialect) => {
    const ms = "bigint";
    await db.schema
      .createTable("orgs")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("name", "text", (c) => c.notNull().unique())
      .addColumn("created_at", ms, (c) => c.notNull())
      .addColumn("max_running", "integer")
      .addColumn("budget_usd", "double precision")
      .execute();
    await db.schema
      .createTable("projects")
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("created_at", ms, (c) => c.notNull())
      .addPrimaryKeyConstraint("projects_pk", ["org_id", "name"])
      .execute();
    await db.schema
      .createTable("api_keys")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("hash", "text", (c) => c.notNull().unique())
      .addColumn("prefix", "text", (c) => c.notNull())
      .addColumn("scopes", "text", (c) => c.notNull())
      .addColumn("instance_admin", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("rate_limit_rps", "double precision")
      .addColumn("created_at", ms, (c) => c.notNull())
      .addColumn("last_used_at", ms)
      .addColumn("revoked_at", ms)
      .execute();
    await db.schema
      .createTable("workers")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("capabilities", "text", (c) => c.notNull())
      .addColumn("accepts", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("version", "text")
      .addColumn("created_at", ms, (c) => c.notNull())
      .addColumn("last_seen_at", ms, (c) => c.notNull())
      .execute();
    await db.schema.createIndex("workers_org_name").on("workers").columns(["org_id", "name", "status"]).execute();
    await db.schema
      .createTable("jobs")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("project", "text", (c) => c.notNull())
      .addColumn("type", "text", (c) => c.notNull())
      .addColumn("name", "text")
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("spec", "text", (c) => c.notNull())
      .addColumn("priority", "integer", (c) => c.notNull())
      .addColumn("requirements", "text", (c) => c.notNull())
      .addColumn("limits", "text", (c) => c.notNull())
      .addColumn("retry", "text", (c) => c.notNull())
      .addColumn("req_gpus", "integer", (c) => c.notNull())
      .addColumn("req_cpus", "double precision", (c) => c.notNull())
      .addColumn("req_memory_gb", "double precision", (c) => c.notNull())
      .addColumn("req_complex", "integer", (c) => c.notNull())
      .addColumn("attempt", "integer", (c) => c.notNull())
      .addColumn("failures", "integer", (c) => c.notNull())
      .addColumn("max_attempts", "integer", (c) => c.notNull())
      .addColumn("created_at", ms, (c) => c.notNull())
      .addColumn("started_at", ms)
      .addColumn("finished_at", ms)
      .addColumn("run_after", ms, (c) => c.notNull())
      .addColumn("worker_id", "text")
      .addColumn("lease_id", "text")
      .addColumn("outputs", "text")
      .addColumn("error", "text")
      .addColumn("usage", "text", (c) => c.notNull())
      .addColumn("cancel_requested", "integer", (c) => c.notNull())
      .addColumn("idempotency_key", "text")
      .addColumn("workflow_run_id", "text")
      .addColumn("log_seq", "integer", (c) => c.notNull())
      .execute();
    // The claim query: queued jobs of one org, by priority then age.
    await db.schema.createIndex("jobs_claim").on("jobs").columns(["org_id", "status", "priority", "created_at"]).execute();
    await db.schema.createIndex("jobs_org_created").on("jobs").columns(["org_id", "id"]).execute();
    await db.schema.createIndex("jobs_idempotency").on("jobs").columns(["org_id", "idempotency_key"]).unique().execute();
    await db.schema
      .createTable("attempts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("job_id", "text", (c) => c.notNull())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("worker_id", "text", (c) => c.notNull())
      .addColumn("attempt", "integer", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("created_at", ms, (c) => c.notNull())
      .addColumn("expires_at", ms, (c) => c.notNull())
      .addColumn("ended_at", ms)
      .addColumn("manifest", "text")
      .addColumn("usage", "text")
      .addColumn("error", "text")
      .execute();
    await db.schema.createIndex("attempts_job").on("attempts").columns(["job_id", "attempt"]).execute();
    await db.schema.createIndex("attempts_active").on("attempts").columns(["status", "expires_at"]).execute();
    await db.schema.createIndex("attempts_worker").on("attempts").columns(["worker_id", "status"]).execute();
    await db.schema
      .createTable("job_logs")
      .addColumn("job_id", "text", (c) => c.notNull())
      .addColumn("seq", "integer", (c) => c.notNull())
      .addColumn("attempt", "integer", (c) => c.notNull())
      .addColumn("ts", ms, (c) => c.notNull())
      .addColumn("stream", "text", (c) => c.notNull())
      .addColumn("line", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("job_logs_pk", ["job_id", "seq"])
      .execute();
    await db.schema
      .createTable("job_metrics")
      .addColumn("job_id", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("step", "integer", (c) => c.notNull())
      .addColumn("ts", ms, (c) => c.notNull())
      .addColumn("value", "double precision", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("job_metrics_job").on("job_metrics").columns(["job_id", "name", "step"]).execute();
    await db.schema
      .createTable("job_events")
      .addColumn("seq", dialect === "postgres" ? sql`bigserial` : "integer", (c) =>
        dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn("job_id", "text", (c) => c.notNull())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("ts", ms, (c) => c.notNull())
      .addColumn("type", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("attempt", "integer", (c) => c.notNull())
      .addColumn("data", "text")
      .execute();
    await db.schema.createIndex("job_events_job").on("job_events").columns(["job_id", "seq"]).execute();
    await db.schema
      .createTable("blobs")
      .addColumn("digest", "text", (c) => c.primaryKey())
      .addColumn("size", "bigint", (c) => c.notNull())
      .addColumn("media_type", "text")
      .addColumn("created_at", ms, (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("blob_owners")
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("digest", "text", (c) => c.notNull())
      .addColumn("created_at", ms, (c) => c.notNull())
      .addPrimaryKeyConstraint("blob_owners_pk", ["org_id", "digest"])
      .execute();
    await db.schema
      .createTable("artifacts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("project", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("version", "integer", (c) => c.notNull())
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("digest", "text", (c) => c.notNull())
      .addColumn("size", "bigint", (c) => c.notNull())
      .addColumn("media_type", "text")
      .addColumn("metadata", "text", (c) => c.notNull())
      .addColumn("producer_job_id", "text")
      .addColumn("parents", "text", (c) => c.notNull())
      .addColumn("created_at", ms, (c) => c.notNull())
      .addUniqueConstraint("artifacts_name_version", ["org_id", "name", "version"])
      .execute();
    await db.schema.createIndex("artifacts_producer").on("artifacts").columns(["producer_job_id"]).execute();
    await db.schema
      .createTable("usage_records")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("org_id", "text", (c) => c.notNull())
      .addColumn("job_id", "text", (c) => c.notNull())
      .addColumn("attempt", "integer", (c) => c.notNull())
      .addColumn("project", "text", (c) => c.notNull())
      .addColumn("type", "text", (c) => c.notNull())
      .addColumn("ts", ms, (c) => c.notNull())
      .addColumn("wall_s", "double precision", (c) => c.notNull())
      .addColumn("cpu_s", "double precision", (c) => c.notNull())
      .addColumn("gpu_s", "double precision", (c) => c.notNull())
      .addColumn("gpu_detail", "text", (c) => c.notNull())
      .addColumn("tokens_in", "bigint", (c) => c.notNull())
      .addColumn("tokens_out", "bigint", (c) => c.notNull())
      .addColumn("cost_usd", "double precision", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("usage_org_ts").on("usage_records").columns(["org_id", "ts"]).execute();
  },
  // Integers the wire contract allows up to 2^53 (metric steps, GPU counts) overflowed int4 on
  // PostgreSQL; SQLite integers are 64-bit already.
  "0002_wide_integers": async (db, dialect) => {
    if (dialect !== "postgres") return;
    await sql`alter table job_metrics alter column step type bigint`.execute(db);
    await sql`alter table jobs alter column req_gpus type bigint`.execute(db);
  },
  // The claim order (priority desc, then age) as an index over queued jobs only: a claim reads
  // the next rows in order and stops, instead of sorting every queued job of the org.
  "0003_claim_order": async (db) => {
    await sql`create index jobs_queued_order on jobs (org_id, priority desc, created_at, id) where status = 'queued'`.execute(db);
  },
  // jobs_claim (org_id, status, priority, created_at) is superseded by jobs_queued_order; every
  // status change paid for an entry in it (two per job). Lists by status use (org_id, id).
  "0005_drop_jobs_claim": async (db) => {
    await sql`drop index if exists jobs_claim`.execute(db);
  },
  // Fewer index entries per job. Every status change of a job or an attempt is a non-HOT update
  // (status is indexed), which adds an entry to every index whose predicate the new row meets:
  // jobs without an idempotency key (nearly all) need none in jobs_idempotency, and only active
  // attempts are ever looked up by expiry or by worker (the lease sweep, a lost worker).
  "0008_lean_indexes": async (db, dialect) => {
    await sql`drop index if exists jobs_idempotency`.execute(db);
    await sql`create unique index jobs_idempotency on jobs (org_id, idempotency_key) where idempotency_key is not null`.execute(db);
    await sql`drop index if exists attempts_active`.execute(db);
    await sql`create index attempts_active on attempts (expires_at) where status = 'active'`.execute(db);
    await sql`drop index if exists attempts_worker`.execute(db);
    await sql`create index attempts_worker on attempts (worker_id) where status = 'active'`.execute(db);
    // PostgreSQL: room on each page for the updated row. An update whose new row must go to another
    // page also writes a tuple-lock record and dirties two pages; with room it stays on the page,
    // and updates of unindexed columns only (a job's log_seq, per log batch) become HOT.
    if (dialect === "postgres") {
      await sql`alter table jobs set (fillfactor = 70)`.execute(db);
      await sql`alter table attempts set (fillfactor = 70)`.execute(db);
    }
  },
  // PostgreSQL: the event log and the usage log keep one index each. Their primary keys (an event's
  // seq, a usage record's random id) were never looked up, yet every row paid an entry in them
  // beside the index its reads use: (job_id, seq) and (org_id, ts, id) become the primary keys and
  // the separate indexes go, four index entries fewer per job. SQLite's job_events.seq is the rowid
  // (no index of its own); its usage_records keep both.
  "0009_log_primary_keys": async (db, dialect) => {
    if (dialect !== "postgres") return;
    await sql`alter table job_events drop constraint job_events_pkey, add primary key (job_id, seq)`.execute(db);
    await sql`drop index if exists job_events_job`.execute(db);
    await sql`alter table usage_records drop constraint usage_records_pkey, add primary key (org_id, ts, id)`.execute(db);
    await sql`drop index if exists usage_org_ts`.execute(db);
  },
};

// Engine-owned tables live beside their code; the numbers keep one global order.
Object.assign(MIGRATIONS, WORKFLOW_MIGRATIONS, SERVING_MIGRATIONS);

/** Names of every migration this code knows, in order. */
export const MIGRATION_NAMES = Object.keys(MIGRATIONS).sort();

/** Kysely migration provider over {@link MIGRATIONS} for one dialect. */
export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      const out: Record<string, Migration> = {};
      for (const name of MIGRATION_NAMES) {
        const up = MIGRATIONS[name]!;
        out[name] = { up: (db) => up(db, dialect) };
      }
      return out;
    },
  };
}
