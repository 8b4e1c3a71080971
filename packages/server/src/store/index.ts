import { Migrator } from "kysely";
import { ForgeError } from "@nexa/core";
import type { Backend } from "./backend.js";
import { MIGRATION_NAMES, migrationProvider } from "./migrations.js";
import { openPostgres } from "./postgres.js";
import { openSqlite } from "./sqlite.js";

export type { Backend } from "./backend.js";
export type { Database } from "./schema.js";
export { MIGRATION_NAMES, type Dialect } from "./migrations.js";

/**
 * Opens a store from a URL: `sqlite:<path>` (or a bare path) or `postgres://…`.
 *
 * @example
 * const backend = openBackend("sqlite:/tmp/forge.db");
 */
export function openBackend(url: string): Backend {
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return openPostgres(url);
  if (url.startsWith("sqlite:")) return openSqlite(url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, ""));
  if (!url.includes("://")) return openSqlite(url);
  throw new ForgeError("invalid_request", `unsupported database URL ${JSON.stringify(url)}: use sqlite:<path> or postgres://user@host/db`);
}

/** Result of {@link migrate}. */
export interface MigrateResult {
  applied: string[];
  current: string | undefined;
}

/**
 * Applies pending migrations (all in one transaction). Refuses a database whose schema is newer
 * than this code — it has migrations this code does not know — rather than corrupting it.
 */
export async function migrate(backend: Backend): Promise<MigrateResult> {
  const migrator = new Migrator({
    db: backend.db,
    provider: migrationProvider(backend.dialect),
    migrationTableName: "nexa_migrations",
    migrationLockTableName: "nexa_migrations_lock",
  });
  const known = new Set(MIGRATION_NAMES);
  const existing = await migrator.getMigrations();
  const executed = existing.filter((m) => m.executedAt !== undefined).map((m) => m.name);
  // getMigrations lists only known ones; read the table for unknown (newer) entries.
  const rows = await backend.db
    .selectFrom("nexa_migrations" as any)
    .select("name" as any)
    .execute()
    .catch(() => [] as { name: string }[]);
  const unknown = (rows as { name: string }[]).map((r) => r.name).filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new ForgeError(
      "conflict",
      `database schema is newer than this Nexa Forge (it has migration ${unknown.join(", ")}); upgrade nexa before using this database`,
    );
  }
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw new ForgeError("internal", `migration failed: ${(error as Error).message}`, { cause: error });
  const applied = (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
  return { applied, current: [...executed, ...applied].sort().at(-1) };
}
