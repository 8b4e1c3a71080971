import pg from "pg";
import { Kysely, PostgresDialect } from "kysely";
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
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
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
