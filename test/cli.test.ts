import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

// The CLI as a user runs it: the built binary in child processes.
const CLI = join(import.meta.dirname, "../packages/cli/bin/nexa.js");
const built = existsSync(join(import.meta.dirname, "../packages/cli/dist/index.js"));

function nexa(args: string[], env: Record<string, string> = {}, timeout = 120_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: "1", ...env }, encoding: "utf8", timeout });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!built)("nexa CLI", () => {
  let up: ChildProcess;
  let home: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), "nexa-cli-"));
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    env = { NEXA_HOME: home, NEXA_URL: `http://127.0.0.1:${port}` };
    up = spawn(process.execPath, [CLI, "up", "--port", String(port), "--gpus", "0"], { env: { ...process.env, ...env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      let out = "";
      up.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("Ctrl-C to stop")) resolve();
      });
      up.on("exit", (c) => reject(new Error(`nexa up exited ${c}: ${out}`)));
    });
  });
  afterAll(async () => {
    if (up.exitCode === null) {
      up.kill("SIGTERM");
      await new Promise((r) => up.once("exit", r));
    }
    rmSync(home, { recursive: true, force: true });
  });

  test("nexa up writes the admin key to a 0600 credentials file and serves the API", () => {
    const creds = JSON.parse(readFileSync(join(home, "credentials"), "utf8")) as { api_key: string };
    expect(creds.api_key).toMatch(/^nxk_/);
    expect(statSync(join(home, "credentials")).mode & 0o777).toBe(0o600);
    const w = nexa(["workers", "list", "--json"], env);
    expect(w.code).toBe(0);
    expect((JSON.parse(w.stdout) as { name: string; status: string }[]).find((x) => x.name === "local")?.status).toBe("online");
  });

  test("jobs submit --wait runs a command on the local worker; a failing one exits non-zero", () => {
    const ok = nexa(["jobs", "submit", "--wait", "--json", "--name", "hello", "--", process.execPath, "-e", "require('fs').writeFileSync(process.env.NEXA_OUTPUTS_DIR + '/hi.txt', 'hi'); console.log('hello from a job')"], env);
    expect(ok.code, ok.stderr).toBe(0);
    const job = JSON.parse(ok.stdout) as { id: string; status: string; outputs: Record<string, { size: number }> };
    expect(job.status).toBe("succeeded");
    expect(job.outputs["hi.txt"]!.size).toBe(2);
    const logs = nexa(["jobs", "logs", job.id], env);
    expect(logs.stdout).toContain("hello from a job");
    const bad = nexa(["jobs", "submit", "--wait", "--", process.execPath, "-e", "process.exit(4)"], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/exit_nonzero/);
    const list = nexa(["jobs", "list", "--json", "--status", "failed"], env);
    expect((JSON.parse(list.stdout) as { items: unknown[] }).items.length).toBeGreaterThanOrEqual(1);
    const usage = nexa(["usage", "--by", "type", "--json"], env);
    expect((JSON.parse(usage.stdout) as { rows: { key: string; jobs: number }[] }).rows.find((r) => r.key === "command")!.jobs).toBeGreaterThanOrEqual(2);
  });

  test("bad input gets a clear error naming the field, and a non-zero exit", () => {
    const r = nexa(["jobs", "submit", "--type", "command", "--spec", '{"argv": []}'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/spec\.argv/);
    const t = nexa(["jobs", "submit", "--type", "nope"], env);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/unknown job type "nope"/);
  });

  test("keys create / list / revoke; a revoked key is refused", () => {
    const created = nexa(["keys", "create", "ci", "--scopes", "jobs:read", "--json"], env);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; key: string };
    expect(nexa(["jobs", "list", "--api-key", key.key], env).code).toBe(0);
    const denied = nexa(["jobs", "submit", "--api-key", key.key, "--", "true"], env);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/jobs:write/);
    expect(nexa(["keys", "revoke", key.id], env).code).toBe(0);
    const refused = nexa(["jobs", "list", "--api-key", key.key], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/revoked|invalid/);
  });

  test("a reader that goes away ends the command quietly, with exit 0 and no EPIPE trace", async () => {
    // The read end closes before the child writes its table: every write then fails with EPIPE.
    const child = spawn(process.execPath, [CLI, "jobs", "list"], { env: { ...process.env, ...env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.destroy();
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });

  test("nexa demo quickstart runs the Node.js-only pipeline and exits 0", () => {
    const r = nexa(["demo", "quickstart", "--json"], {}, 300_000);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; example: string; run: { status: string } };
    expect(out.ok).toBe(true);
    expect(out.example).toBe("quickstart");
    expect(out.run.status).toBe("succeeded");
  });
});
