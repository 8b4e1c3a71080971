import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGpus, parseLabels, resolveWorkerCli } from "../../cli/src/commands/worker.js";
import { bundleDir, bundleEntry } from "./bundle.js";
import { startForge, waitDone, type Forge } from "./helpers.js";

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "nexa-cli-"));
  await writeFile(join(home, "credentials"), JSON.stringify({ url: "http://127.0.0.1:8123", api_key: "nxk_fromfile" }));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe("nexa worker options", () => {
  it("takes the key from $NEXA_HOME/credentials only for a local URL, after flags and env", async () => {
    const local = await resolveWorkerCli({}, { NEXA_HOME: home });
    expect(local).toMatchObject({ url: "http://127.0.0.1:8123", apiKey: "nxk_fromfile", workdir: join(home, "work"), concurrency: 1, gpus: "auto", graceMs: 30_000 });
    const remote = await resolveWorkerCli({ url: "https://forge.example.com" }, { NEXA_HOME: home });
    expect(remote.apiKey).toBeUndefined();
    const env = await resolveWorkerCli({}, { NEXA_HOME: home, NEXA_URL: "http://localhost:9000", NEXA_API_KEY: "nxk_env" });
    expect(env).toMatchObject({ url: "http://localhost:9000", apiKey: "nxk_env", keySource: "NEXA_API_KEY" });
    const flag = await resolveWorkerCli(
      { apiKey: "nxk_flag", labels: "zone=eu, spot=1", gpus: "2", accepts: "command", concurrency: "3", grace: "5", workdir: "/w", cacheMaxGb: "0.5" },
      { NEXA_HOME: home, NEXA_API_KEY: "nxk_env" },
    );
    expect(flag).toMatchObject({ apiKey: "nxk_flag", labels: { zone: "eu", spot: "1" }, gpus: 2, accepts: ["command"], concurrency: 3, graceMs: 5000, workdir: "/w", cacheMaxBytes: 2 ** 29 });
  });

  it("names the flag that is wrong", async () => {
    expect(() => parseLabels("zone")).toThrow(/--labels/);
    expect(() => parseGpus("two")).toThrow(/--gpus/);
    await expect(resolveWorkerCli({ accepts: "command,nope" }, { NEXA_HOME: home })).rejects.toThrow(/--accepts: unknown job type "nope"/);
    await expect(resolveWorkerCli({ concurrency: "0" }, { NEXA_HOME: home })).rejects.toThrow(/--concurrency/);
    await expect(resolveWorkerCli({ cacheMaxGb: "lots" }, { NEXA_HOME: home })).rejects.toThrow(/--cache-max-gb/);
  });
});

describe("nexa worker as a process", () => {
  let forge: Forge;
  let main: string;
  beforeAll(async () => {
    main = await bundleEntry(fileURLToPath(new URL("./fixtures/cli-main.ts", import.meta.url)), join(bundleDir(), "cli"));
    forge = await startForge();
  });
  afterAll(async () => {
    await forge?.close();
    await rm(bundleDir(), { recursive: true, force: true });
  });

  it("reads the local credentials file, runs jobs, and exits 0 on SIGTERM after deregistering", async () => {
    // An embedded install: the server's credentials file in NEXA_HOME is all the worker needs.
    const nexaHome = join(forge.home, "cli-home");
    await mkdir(nexaHome, { recursive: true });
    await writeFile(join(nexaHome, "credentials"), JSON.stringify({ url: forge.url, api_key: forge.workerKey }));
    const proc = spawn(process.execPath, [main, "worker", "--name", "cli-worker", "--gpus", "0", "--labels", "via=cli", "--grace", "1"], {
      env: { ...process.env, NEXA_HOME: nexaHome, NEXA_URL: "", NEXA_API_KEY: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output: string[] = [];
    proc.stdout.on("data", (b: Buffer) => output.push(b.toString()));
    proc.stderr.on("data", (b: Buffer) => output.push(b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    try {
      const job = await forge.admin.submitJob({ type: "command", spec: { argv: ["echo", "from the cli worker"] }, requirements: { labels: { via: "cli" } } });
      const done = await waitDone(forge.admin, job.id, 15_000).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; worker output:\n${output.join("")}`);
      });
      expect(done.status, output.join("")).toBe("succeeded");
      const worker = (await forge.admin.listWorkers()).find((w) => w.name === "cli-worker");
      expect(worker?.status).toBe("online");
      proc.kill("SIGTERM");
      expect(await exited, output.join("")).toBe(0);
      const text = output.join("");
      expect(text).toMatch(/key from .*credentials/);
      expect(text).toMatch(/registered cli-worker as /);
      expect(text).toMatch(/SIGTERM: stopping/);
      expect(text).toMatch(/worker stopped/);
      expect((await forge.admin.listWorkers()).find((w) => w.name === "cli-worker")?.status).toBe("offline");
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
    }
  });
});
