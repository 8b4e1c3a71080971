import { createHash } from "node:crypto";
import pg from "pg";
import { Kysely, PostgresDialect, type PostgresCursor, type PostgresPool, type PostgresPoolClient } from "kysely";
import type { Database } from "./schema.js";
import type { Backend } from "./backend.js";

// int8 columns hold epoch milliseconds and sizes: well inside 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

const CHANNEL = "nexa_events";

/**
 * PostgreSQL backend: a pool for queries and one dedicated connection for LISTEN, so wake-ups
 * reach every replica (`NOTIFY`), never a polling loop.
 */
export function openPostgres(url: string, poolSize = 10): Backend {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client that errors (server restart) must not crash the process.
  pool.on("error", () => {});
  // NEXA_PG_PREPARE=0: every statement unnamed (a pooler that cannot hold prepared statements).
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: process.env.NEXA_PG_PREPARE === "0" ? pool : preparing(pool) }) });
  let listener: pg.Client | undefined;
  return {
    dialect: "postgres",
    db,
    async publishRemote(payload: string) {
      await pool.query("select pg_notify($1, $2)", [CHANNEL, payload]);
    },
    async listen(onPayload: (payload: string) => void) {
      listener = new pg.Client({ connectionString: url });
      listener.on("error", () => {});
      await listener.connect();
      listener.on("notification", (msg) => {
        if (msg.channel === CHANNEL && msg.payload !== undefined) onPayload(msg.payload);
      });
      await listener.query(`listen ${CHANNEL}`);
      const client = listener;
      return async () => {
        await client.end().catch(() => {});
      };
    },
    async close() {
      await listener?.end().catch(() => {});
      await db.destroy();
    },
  };
}

/** Statement texts a process prepares by name, at most (each connection keeps its own plans). */
const PREPARED_TEXTS = 200;

/**
 * The pool as Kysely sees it, running every statement text it has seen before as a named
 * prepared statement: PostgreSQL then parses and analyses it once per connection instead of on
 * every call. The queue's statements are long (the submission's insert of every column as an
 * array, the claim's and the finish's data-modifying CTEs) and their texts are the same for every
 * batch: measured on the add→start path, the submission statement took 1,740 → 1,205 µs and the
 * claim 779 → 365 µs. A text seen once stays unnamed, so one-off texts (`in` lists of every
 * length) do not fill the connections' caches; past {@link PREPARED_TEXTS} texts, new ones stay
 * unnamed too. A prepared `select *` whose table gained a column since (another replica ran a
 * migration) fails with 0A000; that text then runs unnamed from then on.
 */
function preparing(pool: pg.Pool): PostgresPool {
  const seen = new Set<string>();
  const names = new Map<string, string | null>();
  const nameOf = (text: string): string | undefined => {
    const hit = names.get(text);
    if (hit !== undefined) return hit ?? undefined;
    if (!seen.has(text)) {
      if (seen.size < 10 * PREPARED_TEXTS) seen.add(text);
      return undefined;
    }
    if (names.size >= PREPARED_TEXTS) return undefined;
    const name = `nexa_${createHash("sha1").update(text).digest("hex").slice(0, 24)}`;
    names.set(text, name);
    return name;
  };
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => ({
    query: ((textOrCursor: string | PostgresCursor<unknown>, parameters?: ReadonlyArray<unknown>) => {
      if (typeof textOrCursor !== "string") return client.query(textOrCursor as unknown as pg.Submittable);
      const values = [...(parameters ?? [])];
      const name = nameOf(textOrCursor);
      if (name === undefined) return client.query(textOrCursor, values);
      return client.query({ name, text: textOrCursor, values }).catch((err: { code?: string }) => {
        if (err.code !== "0A000") throw err;
        names.set(textOrCursor, null);
        return client.query(textOrCursor, values);
      });
    }) as unknown as PostgresPoolClient["query"],
    release: (destroy?: boolean) => client.release(destroy),
  });
  return {
    connect: async () => {
      const client = await pool.connect();
      let w = wrapped.get(client);
      if (w === undefined) wrapped.set(client, (w = wrap(client)));
      return w;
    },
    end: () => pool.end(),
  };
}
