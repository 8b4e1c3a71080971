// A fresh PostgreSQL database for one benchmark run, created and dropped through an admin URL
// (NEXA_BENCH_PG, default the local server's `postgres` database).
import pg from "pg";

export const PG_ADMIN = process.env.NEXA_BENCH_PG ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Creates `<prefix>_<pid>_<random>`; answers its URL and a `drop()` that removes it (forcing off any session). */
export async function freshPgDatabase(prefix) {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 7)}`;
  await adminQuery(`create database ${name}`);
  const u = new URL(PG_ADMIN);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => adminQuery(`drop database if exists ${name} with (force)`) };
}

async function adminQuery(text) {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}
