import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, SqliteDialect, type SqliteDatabase, type SqliteStatement } from "kysely";
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
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: preparedOnce(conn) }) });
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

/** Prepared statements kept per connection; the claim and finish paths reuse a few dozen texts. */
const STATEMENT_CACHE = 256;

/**
 * The connection as Kysely sees it, keeping prepared statements by SQL text (least recently used
 * dropped first): Kysely prepares every query anew, and preparing cost about as much as running
 * the queue's statements. Safe to share: the single connection runs one statement at a time, and
 * nothing streams rows (`iterate`) through Kysely here.
 */
function preparedOnce(conn: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => conn.close(),
    prepare(sql: string): SqliteStatement {
      let st = cache.get(sql);
      if (st !== undefined) {
        cache.delete(sql);
      } else {
        st = conn.prepare(sql);
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, st);
      return st;
    },
  };
}
