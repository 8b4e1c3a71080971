import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import type { Database } from "./schema.js";
import type { Backend } from "./backend.js";

/**
 * SQLite backend: one file, WAL, one connection. The control plane is the only writer, and
 * Kysely serialises queries on the single connection, so a transaction here is exclusive.
 */
export function openSqlite(path: string): Backend {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const conn = new SQLite(path);
  conn.pragma("journal_mode = WAL");
  // NORMAL in WAL mode survives a process crash (SIGKILL); only power loss can drop the last commits.
  conn.pragma("synchronous = NORMAL");
  conn.pragma("busy_timeout = 5000");
  conn.pragma("foreign_keys = ON");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: conn }) });
  return {
    dialect: "sqlite",
    db,
    async publishRemote() {
      // Single process: nothing to forward.
    },
    async listen() {
      return async () => {};
    },
    async close() {
      await db.destroy();
    },
  };
}
