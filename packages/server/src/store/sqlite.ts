import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";
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
  const checkpointer = path === ":memory:" ? undefined : startCheckpointer(conn, path);
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
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

/**
 * How often the background thread copies committed WAL frames into the database file: about
 * every {@link CHECKPOINT_TARGET_PAGES} pages of WAL at the rate the last interval saw, within
 * these bounds. Each checkpoint costs the next few commits on the control plane's connection
 * (measured: 52 µs a commit with one checkpoint a second, 229 µs with ten), so a quiet control
 * plane checkpoints rarely and a busy one often enough that the WAL never reaches the foreground
 * threshold.
 */
const CHECKPOINT_MIN_MS = 100;
const CHECKPOINT_MAX_MS = 1_000;
const CHECKPOINT_TARGET_PAGES = 1_000;
/**
 * WAL pages after which the control plane's own connection checkpoints anyway (SQLite's default
 * is 1,000). Under a steady stream of commits the background checkpoint never quite catches up
 * (frames arrive while it copies), so the WAL is only started over after this one: it bounds the
 * file at about 16 MB, and the frames left to copy by then are few.
 */
const FOREGROUND_CHECKPOINT_PAGES = 4_000;

/**
 * Checkpoints off the event loop. With SQLite's default auto-checkpoint, the commit that pushes
 * the WAL past 1,000 pages copies them into the database and fsyncs it, on the control plane's
 * only thread: 10–40 ms every few hundred commits, which was the p99 of add→start. Here a worker
 * thread with its own connection runs `wal_checkpoint(PASSIVE)`, which never blocks writers;
 * when it has copied every frame, the next commit starts the WAL from the beginning again.
 * Durability is unchanged: a commit is durable once in the WAL, checkpointed or not.
 */
function startCheckpointer(conn: SQLite.Database, path: string): { stop: () => Promise<void> } {
  conn.pragma(`wal_autocheckpoint = ${FOREGROUND_CHECKPOINT_PAGES}`);
  const worker = new Worker(CHECKPOINTER, {
    eval: true,
    workerData: { sqlite: createRequire(import.meta.url).resolve("better-sqlite3"), path, minMs: CHECKPOINT_MIN_MS, maxMs: CHECKPOINT_MAX_MS, targetPages: CHECKPOINT_TARGET_PAGES },
  });
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  // A failed checkpoint only means the foreground one takes over; never crash the server for it.
  worker.on("error", () => {
    if (conn.open) conn.pragma("wal_autocheckpoint = 1000");
  });
  return {
    stop: async () => {
      // Referenced again while it stops: otherwise, with nothing else pending, the process could
      // exit before the thread's exit arrives (and a top-level await of close() never settles).
      worker.ref();
      worker.postMessage("stop");
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The checkpointer thread (plain CommonJS: it runs from a string, whatever the package is built to). */
const CHECKPOINTER = `
const { workerData, parentPort } = require("node:worker_threads");
const SQLite = require(workerData.sqlite);
const conn = new SQLite(workerData.path);
conn.pragma("busy_timeout = 1000");
const { minMs, maxMs, targetPages } = workerData;
let last = Date.now(), prevLog = 0, prevComplete = true, timer;
const tick = () => {
  const { log, checkpointed } = conn.pragma("wal_checkpoint(PASSIVE)")[0];
  const now = Date.now();
  // Pages committed since the last tick: once every frame was copied, the next commit started
  // the WAL over (an unchanged count then means no commit at all).
  const fresh = prevComplete ? (log === prevLog ? 0 : log) : Math.max(0, log - prevLog);
  const perMs = fresh / Math.max(1, now - last);
  last = now;
  prevLog = log;
  prevComplete = checkpointed === log;
  timer = setTimeout(tick, perMs > 0 ? Math.min(maxMs, Math.max(minMs, targetPages / perMs)) : maxMs);
};
timer = setTimeout(tick, minMs);
parentPort.on("message", () => {
  clearTimeout(timer);
  conn.close();
  process.exit(0);
});
`;

/** Prepared statements kept per connection; the claim and finish paths reuse a few dozen texts. */
const STATEMENT_CACHE = 256;
const DDL = /^\s*(create|alter|drop)\b/i;

/**
 * The connection as Kysely sees it, keeping prepared statements by SQL text (least recently used
 * dropped first): Kysely prepares every query anew, and preparing cost about as much as running
 * the queue's statements. Safe to share: the single connection runs one statement at a time, and
 * nothing streams rows (`iterate`) through Kysely here. Statements that return rows answer them
 * through {@link rowsAsObjects}. A schema change (create, alter, drop) empties the cache: SQLite
 * recompiles a statement whose tables changed, and `select *` may then answer other columns.
 */
function preparedOnce(conn: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => conn.close(),
    prepare(sql: string): SqliteStatement {
      if (DDL.test(sql)) {
        cache.clear();
        return conn.prepare(sql);
      }
      let st = cache.get(sql);
      if (st !== undefined) {
        cache.delete(sql);
      } else {
        st = rowsAsObjects(conn.prepare(sql));
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, st);
      return st;
    },
  };
}

/**
 * A statement that returns rows, reading them as arrays and making each object with a function
 * built once for its columns. better-sqlite3 sets an object's properties one by one through V8's
 * API: a 31-column job row cost 16-19 µs that way, 8.5-10 µs as an array made into an object by
 * an object literal (500-row reads, this machine). Same objects: a column name that repeats keeps
 * its last value, as before.
 */
function rowsAsObjects(st: SQLite.Statement): SqliteStatement {
  if (!st.reader) return st;
  let width = -1;
  let make: (row: unknown[]) => unknown = () => undefined;
  const shape = () => {
    const names = st.columns().map((c) => c.name);
    // The names are quoted by JSON.stringify, so the generated code holds them only as keys; a
    // computed key keeps a column named __proto__ an own property (better-sqlite3 dropped it).
    const keys = names.map((n) => (n === "__proto__" ? `["__proto__"]` : JSON.stringify(n)));
    make = new Function("r", `return { ${keys.map((k, i) => `${k}: r[${i}]`).join(", ")} };`) as (row: unknown[]) => unknown;
    width = names.length;
  };
  shape();
  // A row of another width: the statement was recompiled against a changed table (another
  // connection's DDL); its columns are read again.
  const object = (row: unknown[]) => {
    if (row.length !== width) shape();
    return make(row);
  };
  st.raw(true);
  return {
    reader: true,
    all: (parameters) => (st.all(parameters) as unknown[][]).map(object),
    iterate: function* (parameters) {
      for (const row of st.iterate(parameters) as IterableIterator<unknown[]>) yield object(row);
    },
    run: (parameters) => st.run(parameters),
  };
}
