import { openBackend } from "@nexa/server";
import { sql } from "kysely";
import pg from "pg";
import { expect, test } from "vitest";
import { freshPgDatabase, postgresAvailable } from "./helpers.js";

const HAVE_PG = await postgresAvailable();

// The PostgreSQL backend runs a statement text it has seen before as a named prepared statement.
// The server must hold those plans (pg_prepared_statements of the connection), and a plan that
// a schema change made stale (a `select *` whose table gained a column, as another replica's
// migration would do) must not fail the query: it runs unnamed instead.
test.skipIf(!HAVE_PG)("PostgreSQL: repeated statements are prepared once; a column added since does not break them", async () => {
  const { url, drop } = await freshPgDatabase();
  const backend = openBackend(url);
  const other = new pg.Client({ connectionString: url });
  try {
    await other.connect();
    await other.query("create table t (id int primary key, v text)");
    await other.query("insert into t values (1, 'a'), (2, 'b')");
    const read = () => sql<{ id: number; v: string; w?: string }>`select * from t where id >= ${1} order by id`.execute(backend.db);
    for (let i = 0; i < 3; i++) expect((await read()).rows.map((r) => r.v)).toEqual(["a", "b"]);
    // The pool's connections now hold it by name (the first run was unnamed, the next ones not).
    const held = await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements where statement like 'select * from t where id >= $1%'`.execute(backend.db);
    expect(held.rows[0]!.n).toBeGreaterThanOrEqual(1);

    await other.query("alter table t add column w text default 'x'");
    for (let i = 0; i < 3; i++) expect((await read()).rows).toEqual([{ id: 1, v: "a", w: "x" }, { id: 2, v: "b", w: "x" }]);

    // Errors of the statement itself still reach the caller.
    await expect(sql`select * from t where id = ${"not a number"}`.execute(backend.db)).rejects.toThrow(/invalid input syntax/);
    await expect(sql`select * from t where id = ${"not a number"}`.execute(backend.db)).rejects.toThrow(/invalid input syntax/);
  } finally {
    await other.end().catch(() => {});
    await backend.close();
    await drop();
  }
});
