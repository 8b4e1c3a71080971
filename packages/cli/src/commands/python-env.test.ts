// ensureRecipePython with real processes: python3 -m venv and pip against this machine's package
// index (a small package stands in for torch so that the test stays quick).
import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { workerPython } from "../../../worker/src/handlers/train.js";
import { ensureRecipePython, missingModules, pipRetriesFor, PythonSetupError } from "./python-env.js";

const hasVenv = spawnSync("python3", ["-c", "import venv, ensurepip"]).status === 0;
if (!hasVenv) console.warn("python-env.test.ts skipped: python3 with venv and ensurepip is needed");
// Fail over from an unreachable default index at once (as .ci/run does).
const PIP_ENV = { PIP_RETRIES: "0", PIP_TIMEOUT: "10", PIP_NO_INPUT: "1", PIP_DISABLE_PIP_VERSION_CHECK: "1" };

describe.skipIf(!hasVenv)("ensureRecipePython", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nexa-pyenv-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("missingModules lists what a Python lacks, and null for one that does not run", async () => {
    expect(await missingModules("python3", ["json", "nexa_no_such_module"])).toEqual(["nexa_no_such_module"]);
    expect(await missingModules("python3", ["json"])).toEqual([]);
    expect(await missingModules(join(dir, "no-python"), ["json"])).toBeNull();
  });

  test("no candidate has the module: a venv under home, pip progress summarised; the next call finds it", async () => {
    const home = join(dir, "home");
    const req = join(dir, "requirements.txt");
    await writeFile(req, "iniconfig\n");
    const lines: string[] = [];
    const env = { ...process.env, ...PIP_ENV, NEXA_PYTHON: "" };
    const first = await ensureRecipePython({ home, requirements: req, modules: ["iniconfig"], candidates: [], env, say: (l) => lines.push(l) });
    expect(first).toEqual({ python: join(home, "venv", "bin", "python"), source: "installed" });
    expect(await missingModules(first.python, ["iniconfig"])).toEqual([]);
    const text = lines.join("\n");
    expect(text).toContain(`creating a venv at ${join(home, "venv")}`);
    expect(text).toMatch(/pip \d+\.\ds: collecting iniconfig\S* \(1 so far\)/);
    expect(text).toMatch(/pip \d+\.\ds: installed/);
    expect(text).not.toMatch(/WARNING: Location/);

    const again = await ensureRecipePython({ home, requirements: req, modules: ["iniconfig"], env });
    expect(again).toEqual({ python: first.python, source: "found" });

    // A worker on this NEXA_HOME without NEXA_PYTHON (nexa up after nexa demo) runs recipes with that venv.
    const saved = { home: process.env.NEXA_HOME, python: process.env.NEXA_PYTHON };
    try {
      delete process.env.NEXA_PYTHON;
      process.env.NEXA_HOME = home;
      expect(workerPython()).toBe(first.python);
      process.env.NEXA_HOME = join(dir, "no-venv-here");
      expect(workerPython()).toBe("python3");
    } finally {
      for (const [k, v] of [["NEXA_HOME", saved.home], ["NEXA_PYTHON", saved.python]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }, 180_000);

  test("pip failing is an error with pip's last lines and what to do", async () => {
    const home = join(dir, "home-bad");
    const req = join(dir, "bad-requirements.txt");
    await writeFile(req, "nexa-forge-no-such-package-0\n");
    const err = await ensureRecipePython({ home, requirements: req, modules: ["nexa_forge_no_such_package_0"], candidates: [], env: { ...process.env, ...PIP_ENV, NEXA_PYTHON: "" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PythonSetupError);
    expect((err as Error).message).toMatch(/pip install into .*home-bad\/venv failed \(exit 1\)/);
    expect((err as Error).message).toMatch(/No matching distribution found for nexa-forge-no-such-package-0/);
    expect((err as Error).message).toMatch(/set NEXA_PYTHON/);
  }, 180_000);

  test("NEXA_PYTHON is used as it is, never installed into: what it lacks is named with the pip command", async () => {
    const env = { ...process.env, NEXA_PYTHON: "python3" };
    await expect(ensureRecipePython({ home: join(dir, "unused"), requirements: "req.txt", modules: ["json"], env })).resolves.toEqual({ python: "python3", source: "env" });
    await expect(ensureRecipePython({ home: join(dir, "unused"), requirements: "req.txt", modules: ["nexa_no_such_module"], env })).rejects.toThrow(
      /NEXA_PYTHON=python3 lacks nexa_no_such_module: run `python3 -m pip install -r req.txt`/,
    );
  });
});

describe("pipRetriesFor", () => {
  const listen = (server: Server) => new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
  const noProxy = { HTTPS_PROXY: "", https_proxy: "", HTTP_PROXY: "", http_proxy: "", ALL_PROXY: "", all_proxy: "", PIP_RETRIES: "" };

  test("an index that refuses connections: --retries 0, and a note naming it without its credentials", async () => {
    // A port that was just free: nothing listens on it.
    const probe = createServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    const r = await pipRetriesFor("python3", { ...noProxy, PIP_INDEX_URL: `http://user:secret@127.0.0.1:${port}/simple` });
    expect(r.args).toEqual(["--retries", "0"]);
    expect(r.note).toContain(`http://127.0.0.1:${port}/simple`);
    expect(r.note).not.toContain("secret");
    expect(r.note).toMatch(/ECONNREFUSED/);
  });

  test("an index that answers, even with an error status, keeps pip's retries; so do PIP_RETRIES, a proxy and a file: index", async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.statusCode = 404;
      res.end();
    });
    const port = await listen(server);
    try {
      expect(await pipRetriesFor("python3", { ...noProxy, PIP_INDEX_URL: `http://127.0.0.1:${port}/simple` })).toEqual({ args: [] });
      expect(seen).toEqual(["HEAD /simple"]);
      const closed = `http://127.0.0.1:1/simple`;
      expect(await pipRetriesFor("python3", { ...noProxy, PIP_INDEX_URL: closed, PIP_RETRIES: "3" })).toEqual({ args: [] });
      expect(await pipRetriesFor("python3", { ...noProxy, PIP_INDEX_URL: closed, https_proxy: "http://proxy:3128" })).toEqual({ args: [] });
      expect(await pipRetriesFor("python3", { ...noProxy, PIP_INDEX_URL: "file:///opt/pypi/simple" })).toEqual({ args: [] });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
