import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tar from "tar";
import { deploymentIdOf, type Deployment } from "@nexa/core";
import { main as nexa } from "@nexa/cli";
import { ForgeClient } from "@nexa/sdk";
import { startServer, type RunningServer } from "@nexa/server";
import { DeploymentSupervisor, WorkerAgent } from "@nexa/worker";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { captureCli, type CliResult } from "../packages/cli/test/support/in-process.js";

// Deployments end to end: a real control plane, real WorkerAgents, a real `deploy` job starting a
// real model-server process. With NEXA_PYTHON (torch + transformers) that is recipes/torch/serve.py
// on a tiny random GPT-2; without it, test/fixtures/stand-in-serve.mjs takes the Python's place
// (same argv, same endpoints), so the lifecycle is exercised on every machine.
const REAL_PYTHON = process.env.NEXA_PYTHON !== undefined && process.env.NEXA_PYTHON !== "" ? process.env.NEXA_PYTHON : undefined;
if (!REAL_PYTHON) process.env.NEXA_PYTHON = fileURLToPath(new URL("./fixtures/stand-in-serve.mjs", import.meta.url));
const trainFixtures = fileURLToPath(new URL("../packages/worker/test/fixtures/train/", import.meta.url));

let home: string;
let server: RunningServer;
let admin: ForgeClient;
let workerKey: string;
let modelRef: string;
const agents: WorkerAgent[] = [];
const supervisors: DeploymentSupervisor[] = [];

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "nexa-deployments-"));
  server = await startServer({ home, port: 0, rateLimitRps: 0, heartbeatIntervalS: 0.5 });
  admin = new ForgeClient({ url: server.url, apiKey: server.adminKey });
  workerKey = (await admin.createKey({ name: "workers", scopes: ["worker"] })).key!;
  const model = join(home, "build", "model");
  await mkdir(model, { recursive: true });
  if (REAL_PYTHON) {
    const r = spawnSync(REAL_PYTHON, [join(trainFixtures, "make_tiny_gpt2.py"), model], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`cannot build the test model: ${r.stderr}`);
    await copyFile(join(trainFixtures, "tokenizer", "tokenizer.json"), join(model, "tokenizer.json"));
  } else {
    await writeFile(join(model, "config.json"), JSON.stringify({ model_type: "gpt2", n_layer: 2 }));
  }
  await tar.c({ cwd: join(home, "build"), file: join(home, "model.tar"), portable: true }, ["model"]);
  modelRef = (await admin.putBlob(await readFile(join(home, "model.tar")), { mediaType: "application/x-tar" })).digest;
}, 120_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
  await Promise.all(supervisors.map((s) => s.stopAll()));
  await server?.close();
  await rm(home, { recursive: true, force: true });
});

async function worker(name: string): Promise<{ agent: WorkerAgent; deployments: DeploymentSupervisor; workdir: string }> {
  const deployments = new DeploymentSupervisor();
  const workdir = join(home, name);
  const agent = new WorkerAgent({ url: server.url, apiKey: workerKey, name, gpus: 0, accepts: ["deploy"], workdir, graceMs: 2000, claimWaitS: 2, deployments });
  agents.push(agent);
  supervisors.push(deployments);
  await agent.start();
  return { agent, deployments, workdir };
}

/** Polls the deployment until `ok` holds (state changes arrive through worker heartbeats). */
async function until(id: string, ok: (d: Deployment) => boolean, what: string, timeoutMs = 150_000): Promise<Deployment> {
  const deadline = Date.now() + timeoutMs;
  let d = await admin.getDeployment(id);
  while (!ok(d)) {
    if (Date.now() > deadline) throw new Error(`deployment ${id} never became ${what}: ${JSON.stringify(d)}`);
    await new Promise((r) => setTimeout(r, 100));
    d = await admin.getDeployment(id);
  }
  return d;
}

async function alive(pid: number): Promise<boolean> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Runs `nexa <args>` in this process against the server, capturing what it prints. */
function cli(...args: string[]): Promise<CliResult> {
  return captureCli(() => nexa(["node", "nexa", ...args, "--url", server.url, "--api-key", server.adminKey!]));
}

async function chat(url: string, model = "tiny"): Promise<{ status: number; role: string | undefined }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hello there" }], max_tokens: 3, temperature: 0 }),
  });
  const body = (await res.json()) as { choices?: Array<{ message: { role: string } }> };
  return { status: res.status, role: body.choices?.[0]?.message.role };
}

describe(`deployments end to end (${REAL_PYTHON ? "recipes/torch/serve.py" : "stand-in model server"})`, () => {
  test(
    "deploy → healthy at a url that answers; its worker leaves → served by another worker at a new url; DELETE → stopped, process gone",
    async () => {
      const a = await worker("serve-a");
      const job = await admin.submitJob({ type: "deploy", spec: { model: modelRef, name: "tiny", backend: "torch", health_timeout_s: 120 } });
      const id = deploymentIdOf(job.id, {});
      expect((await admin.getDeployment(id)).status).toBe("starting");
      const done = await admin.waitForJob(job.id, 150_000);
      expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
      // The job's output names the deployment, so users can link the two.
      const out = JSON.parse(await (await admin.getBlob(done.outputs?.["deployment.json"]?.digest ?? "")).text()) as { id: string; deployment_id: string; url: string };
      expect(out).toMatchObject({ id: job.id, deployment_id: id });

      const first = await until(id, (d) => d.status === "healthy", "healthy");
      expect(first).toMatchObject({ name: "tiny", backend: "torch", worker_id: a.agent.id, job_id: job.id, url: out.url, restarts: 0 });
      const models = (await (await fetch(`${first.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      expect(models.data.map((m) => m.id)).toEqual(["tiny"]);
      expect(await chat(first.url!)).toEqual({ status: 200, role: "assistant" });
      expect((await admin.listDeployments({ status: "healthy", name: "tiny" })).map((d) => d.id)).toEqual([id]);
      const listed = await cli("deployments", "list", "--status", "healthy", "--json");
      expect(listed.code, listed.err).toBe(0);
      expect((JSON.parse(listed.out) as Deployment[]).map((d) => [d.id, d.url])).toEqual([[id, first.url]]);
      const shown = await cli("deployments", "get", id);
      expect(shown.out).toContain(first.url!);
      const missing = await cli("deployments", "get", "dep_nope");
      expect(missing.code).toBe(1);
      expect(missing.err).toContain("deployment dep_nope not found");
      const badStatus = await cli("deployments", "list", "--status", "asleep");
      expect(badStatus.code).toBe(1);
      expect(badStatus.err).toContain("--status");
      const pidA = a.deployments.list()[0]?.pid ?? 0;
      expect(await alive(pidA)).toBe(true);

      // Worker A leaves (its servers end with it); worker B picks the deployment up.
      const b = await worker("serve-b");
      await a.agent.stop();
      expect(await alive(pidA)).toBe(false);
      const moved = await until(id, (d) => d.status === "healthy" && d.worker_id === b.agent.id, "healthy on worker B");
      expect(moved).toMatchObject({ name: "tiny", restarts: 1 });
      expect(moved.job_id).not.toBe(job.id);
      expect(moved.url).not.toBe(first.url);
      expect(await chat(moved.url!)).toEqual({ status: 200, role: "assistant" });
      await expect(fetch(`${first.url}/health`)).rejects.toThrow();
      const again = await admin.getJob(moved.job_id);
      expect(again.spec).toMatchObject({ deployment_id: id });
      const held = b.deployments.list();
      expect(held.map((d) => [d.deploymentId, d.state])).toEqual([[id, "healthy"]]);
      const pidB = held[0]!.pid!;

      // DELETE: stopping until B's heartbeat has stopped the server, then stopped.
      const stopping = await cli("deployments", "stop", id, "--json");
      expect(stopping.code, stopping.err).toBe(0);
      expect((JSON.parse(stopping.out) as Deployment).status).toBe("stopping");
      const stopped = await until(id, (d) => d.status === "stopped", "stopped", 30_000);
      expect(stopped.stopped_at).not.toBeNull();
      expect(await alive(pidB)).toBe(false);
      await expect(fetch(`${moved.url}/health`)).rejects.toThrow();
      expect(existsSync(join(b.workdir, `deploy-${moved.job_id}`))).toBe(false);
      // Reported once as stopped, the worker forgets it and stops sending heartbeats for it.
      const deadline = Date.now() + 10_000;
      while (b.deployments.list().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(b.deployments.list()).toEqual([]);
    },
    400_000,
  );

  test(
    "DELETE while the deploy job is still starting: the job is canceled or its server stopped, nothing keeps running",
    async () => {
      await worker("serve-c");
      const job = await admin.submitJob({ type: "deploy", spec: { model: modelRef, name: "tiny-late", backend: "torch", health_timeout_s: 120 } });
      const id = deploymentIdOf(job.id, {});
      // Wait until a worker (B from the test above, or C) has started the server process, then
      // stop it before (or just after) it is healthy.
      const deadline = Date.now() + 60_000;
      const held = () => supervisors.flatMap((sup) => sup.list()).find((x) => x.deploymentId === id);
      while (held()?.pid === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const pid = held()?.pid ?? 0;
      expect(pid).toBeGreaterThan(0);
      expect(["starting", "stopping", "stopped"]).toContain((await admin.stopDeployment(id)).status);
      const d = await until(id, (x) => x.status === "stopped", "stopped", 60_000);
      expect(d.stopped_at).not.toBeNull();
      const final = await admin.waitForJob(job.id, 60_000);
      expect(["canceled", "succeeded"]).toContain(final.status);
      const gone = Date.now() + 10_000;
      while ((await alive(pid)) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
      expect(await alive(pid)).toBe(false);
      expect((await admin.listDeployments({ name: "tiny-late" })).map((x) => x.status)).toEqual(["stopped"]);
    },
    200_000,
  );

  test(
    "a worker the sweeper marks offline (silent too long): the deployment is served again and one server process is left",
    async () => {
      const job = await admin.submitJob({ type: "deploy", spec: { model: modelRef, name: "tiny-sweep", backend: "torch", health_timeout_s: 120 } });
      const id = deploymentIdOf(job.id, {});
      const first = await until(id, (d) => d.status === "healthy", "healthy");
      const instances = () => supervisors.flatMap((sup) => sup.list()).filter((x) => x.deploymentId === id && x.state !== "stopped");
      const oldPid = instances()[0]!.pid!;
      // What the sweeper does to a worker not seen for a while; the agent notices on its next claim and registers again.
      await server.ctx.db.updateTable("workers").set({ last_seen_at: 0 }).where("id", "=", first.worker_id!).execute();
      await server.ctx.queue.markStaleWorkers(60_000);
      const moved = await until(id, (d) => d.status === "healthy" && d.job_id !== job.id, "healthy again");
      expect(moved.restarts).toBe(1);
      expect(moved.worker_id).not.toBe(first.worker_id);
      expect(await chat(moved.url!, "tiny-sweep")).toEqual({ status: 200, role: "assistant" });
      // The old instance is stopped: superseded on the same machine, or told so by the heartbeat.
      const deadline = Date.now() + 30_000;
      while ((instances().length !== 1 || (await alive(oldPid))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(instances().map((x) => x.url)).toEqual([moved.url]);
      expect(await alive(oldPid)).toBe(false);
      await admin.stopDeployment(id);
      await until(id, (d) => d.status === "stopped", "stopped", 30_000);
    },
    300_000,
  );
});
