import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tar from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeploymentSupervisor } from "../src/deployments.js";
import { createDeployHandler } from "../src/handlers/deploy.js";
import { startForge, waitDone, type Forge } from "./helpers.js";

// A real served model: recipes/torch/serve.py with the Python of NEXA_PYTHON (torch + transformers).
const PYTHON = process.env.NEXA_PYTHON;
if (!PYTHON) console.warn("deploy.test.ts: NEXA_PYTHON is unset — skipping the serving cases (set it to a Python with torch and transformers)");
const fixtures = fileURLToPath(new URL("./fixtures/train/", import.meta.url));

let forge: Forge;
let tmp: string;
let modelRef: string;
const supervisor = new DeploymentSupervisor();

beforeAll(async () => {
  forge = await startForge();
  tmp = await mkdtemp(join(tmpdir(), "nexa-deploy-"));
  if (!PYTHON) return;
  // A tiny random GPT-2 saved as a train job saves it: model/ with the tokenizer, in a model.tar.
  const r = spawnSync(PYTHON, [join(fixtures, "make_tiny_gpt2.py"), join(tmp, "model")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cannot build the test model: ${r.stderr}`);
  await copyFile(join(fixtures, "tokenizer", "tokenizer.json"), join(tmp, "model", "tokenizer.json"));
  await tar.c({ cwd: tmp, file: join(tmp, "model.tar"), portable: true }, ["model"]);
  modelRef = (await forge.admin.putBlob(await readFile(join(tmp, "model.tar")), { mediaType: "application/x-tar" })).digest;
}, 120_000);
afterAll(async () => {
  await supervisor.stopAll();
  await forge?.close();
  await rm(tmp, { recursive: true, force: true });
});

async function alive(pid: number): Promise<boolean> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

describe("deploy job", () => {
  it("a model that is not a model archive fails with invalid_model", async () => {
    const w = await forge.worker({ name: "deploy-bad", handlers: { deploy: createDeployHandler(supervisor) } });
    const blob = await forge.admin.putBlob(new TextEncoder().encode("not a tar"));
    const job = await forge.admin.submitJob({ type: "deploy", spec: { model: blob.digest, name: "nope", backend: "torch" } });
    const done = await waitDone(forge.admin, job.id);
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("invalid_model");
    await w.agent.stop();
  });

  it.skipIf(!PYTHON)(
    "serves a model: healthy before the job succeeds, outlives the attempt, restarted when it dies, stopped on shutdown",
    async () => {
      const t0 = Date.now();
      const w = await forge.worker({ name: "server-box", handlers: { deploy: createDeployHandler(supervisor) } });
      const job = await forge.admin.submitJob({ type: "deploy", spec: { model: modelRef, name: "tiny-gpt", backend: "auto", health_timeout_s: 120 } });
      const done = await waitDone(forge.admin, job.id, 150_000);
      expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
      const d = JSON.parse(await (await forge.admin.getBlob(done.outputs?.["deployment.json"]?.digest ?? "")).text()) as { id: string; url: string; model: string; backend: string; pid: number };
      expect(d).toMatchObject({ id: job.id, model: "tiny-gpt", backend: "torch" });
      expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // The unpacked model lives beside the attempt workspaces, with the server's pid file.
      expect(existsSync(join(w.workdir, `deploy-${job.id}`, "model", "config.json"))).toBe(true);
      expect(existsSync(join(w.workdir, `deploy-${job.id}`, ".pid"))).toBe(true);

      // The job is over; the server still answers.
      const models = (await (await fetch(`${d.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      expect(models.data.map((m) => m.id)).toEqual(["tiny-gpt"]);
      const res = await fetch(`${d.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny-gpt", messages: [{ role: "user", content: "hi" }], max_tokens: 3, temperature: 0 }),
      });
      expect(res.status).toBe(200);
      const chat = (await res.json()) as { choices: Array<{ message: { role: string } }>; usage: { completion_tokens: number } };
      expect(chat.choices[0]?.message.role).toBe("assistant");
      expect(chat.usage.completion_tokens).toBeGreaterThan(0);
      expect(supervisor.get(job.id)).toMatchObject({ state: "healthy", restarts: 0, pid: d.pid });

      // The server dies: the supervisor starts it again at the same URL.
      process.kill(d.pid, "SIGKILL");
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        const s = supervisor.get(job.id);
        if (s?.state === "healthy" && s.pid !== d.pid) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const after = supervisor.get(job.id);
      expect(after).toMatchObject({ state: "healthy", restarts: 1 });
      expect((await fetch(`${d.url}/health`)).status).toBe(200);

      // Worker shutdown stops every deployment.
      await w.agent.stop();
      await supervisor.stopAll();
      expect(supervisor.get(job.id)?.state).toBe("stopped");
      expect(await alive(after?.pid ?? 0)).toBe(false);
      expect(existsSync(join(w.workdir, `deploy-${job.id}`))).toBe(false);
      await expect(fetch(`${d.url}/health`)).rejects.toThrow();
      console.log(`deploy.test: healthy and restarted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    },
    240_000,
  );
});
