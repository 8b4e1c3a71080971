import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openBackend } from "@nexa/server";
import { sql } from "kysely";
import { expect, test } from "vitest";

// The control plane's SQLite connection does not checkpoint at SQLite's default 1,000 pages: a
// worker thread copies the WAL into the database file in the background, so commits stay cheap.
test("SQLite: the WAL is checkpointed into the database file off the event loop, and stays bounded", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nexa-ckpt-"));
  const file = join(dir, "forge.db");
  const backend = openBackend(`sqlite:${file}`);
  const insert = async (n: number) => {
    for (let i = 0; i < n; i++) await sql`insert into t (v) values (${"x".repeat(4000)})`.execute(backend.db);
  };
  try {
    await sql`create table t (id integer primary key, v text not null)`.execute(backend.db);
    const { rows: pragma } = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(backend.db);
    expect(pragma[0]!.wal_autocheckpoint).toBe(4000);
    // 1,000 commits of one 4 KB row: about 3,000 WAL pages, past SQLite's own auto-checkpoint but
    // short of the foreground threshold (4,000): only the background thread can move them.
    await insert(1000);
    const deadline = Date.now() + 10_000;
    while (statSync(file).size < 3.5e6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(statSync(file).size).toBeGreaterThan(3.5e6);
    // A steady stream of 4,000 more commits (about 50 MB of WAL traffic) leaves a WAL near the
    // foreground threshold (16 MB; a few MB more when a loaded machine delays the background
    // thread: 21 MB once in CI), not the 60 MB it would reach unchecked.
    await insert(4000);
    expect(statSync(`${file}-wal`).size).toBeLessThan(30e6);
    const { rows } = await sql<{ n: number }>`select count(*) as n from t`.execute(backend.db);
    expect(rows[0]!.n).toBe(5000);
  } finally {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// close() waits for the checkpointer thread to exit: a script whose last step is closing the
// store must run to its end (before, the unreferenced thread let the process exit first: code 13).
test("SQLite: a process whose last await is close() finishes it and exits 0", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nexa-ckpt-close-"));
  const dist = fileURLToPath(new URL("../dist/index.js", import.meta.url));
  const script = `const { openBackend } = await import(${JSON.stringify(dist)}); const b = openBackend(${JSON.stringify(`sqlite:${join(dir, "f.db")}`)}); await b.close(); console.log("closed");`;
  try {
    for (let i = 0; i < 5; i++) {
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
      expect({ status: r.status, out: r.stdout.trim() }).toEqual({ status: 0, out: "closed" });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Rows come back as the objects better-sqlite3 made, though they are read as arrays: every
// column in order, a repeated name keeping its last value (as better-sqlite3 did), and __proto__
// an own property (better-sqlite3 dropped it).
test("SQLite: rows read as arrays come back as plain objects with every column", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nexa-rows-"));
  const backend = openBackend(`sqlite:${join(dir, "forge.db")}`);
  try {
    const { rows } = await sql<Record<string, unknown>>`select 1 as a, 'x' as b, null as c, 2 as a, 3 as "__proto__"`.execute(backend.db);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.keys(row)).toEqual(["a", "b", "c", "__proto__"]);
    expect(row).toMatchObject({ a: 2, b: "x", c: null });
    expect(Object.getOwnPropertyDescriptor(row, "__proto__")?.value).toBe(3);
    await sql`create table t (id integer primary key, v text)`.execute(backend.db);
    await sql`insert into t (v) values ('p'), ('q')`.execute(backend.db);
    const updated = await sql<{ id: number; v: string }>`update t set v = v || '!' returning *`.execute(backend.db);
    expect(updated.rows.map((r) => ({ ...r })).sort((x, y) => x.id - y.id)).toEqual([{ id: 1, v: "p!" }, { id: 2, v: "q!" }]);
    // The same statement text after the table changed answers its new columns.
    const all = async () => (await sql<Record<string, unknown>>`select * from t order by id`.execute(backend.db)).rows;
    expect((await all())[0]).toEqual({ id: 1, v: "p!" });
    await sql`alter table t add column w integer default 7`.execute(backend.db);
    expect((await all())[0]).toEqual({ id: 1, v: "p!", w: 7 });
    await sql`alter table t drop column v`.execute(backend.db);
    await sql`alter table t add column z text default 'z'`.execute(backend.db);
    expect((await all())[0]).toEqual({ id: 1, w: 7, z: "z" });
  } finally {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
