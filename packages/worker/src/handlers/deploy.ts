import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as tar from "tar";
import { DeploySpec, deploymentIdOf } from "@nexa/core";
import { DeploymentError, deployments, freePort, type DeploymentSupervisor } from "../deployments.js";
import { JobFailure, type Handler, type HandlerContext, type HandlerResult } from "../handler.js";
import { recipesDir, workerPython } from "./train.js";

/** Whether `vllm` runs on this worker (`vllm --version`). */
async function hasVllm(): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn("vllm", ["--version"], { stdio: "ignore" });
    p.once("error", () => resolve(false));
    p.once("exit", (code) => resolve(code === 0));
  });
}

/**
 * A `deploy` handler bound to a {@link DeploymentSupervisor} (tests pass their own; the worker
 * uses the process-wide {@link deployments}).
 */
export function createDeployHandler(supervisor: DeploymentSupervisor): Handler {
  return (ctx) => runDeploy(ctx, supervisor);
}

/**
 * The `deploy` handler: unpacks a `model.tar` artifact (as a `train` job outputs) into a folder
 * that outlives the attempt, starts `vllm serve` where vLLM is installed (`backend: auto`) or
 * else `recipes/torch/serve.py`, waits for `/health`, and succeeds with the output
 * `deployment.json` `{id, deployment_id, url, model, backend, pid}` (`id` is the job id;
 * `deployment_id` the control plane's `dep_…` id, `spec.deployment_id` or derived from the job
 * id), also annotated on the attempt as `deployment`. The server keeps running under the
 * worker's {@link DeploymentSupervisor} (restarted if it dies, stopped on worker shutdown or
 * when the control plane says so in the worker heartbeat).
 *
 * Failure codes: `invalid_spec`, `input_missing`, `invalid_model` (not a model archive),
 * `backend_unavailable` (vLLM asked for but missing), `deploy_failed` (the server exited or
 * was not healthy in `health_timeout_s`, with its last log lines), and `canceled` / `preempted`.
 */
export const deployHandler: Handler = createDeployHandler(deployments);

async function runDeploy(ctx: HandlerContext, supervisor: DeploymentSupervisor): Promise<HandlerResult> {
  const parsed = DeploySpec.safeParse(ctx.job.spec);
  if (!parsed.success) {
    throw new JobFailure("invalid_spec", `invalid deploy spec: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, { retryable: false });
  }
  const spec = parsed.data;
  const deploymentId = deploymentIdOf(ctx.job.id, spec);
  let archive: string;
  try {
    archive = await ctx.fetchInput(spec.model, "model.tar");
  } catch (err) {
    if (err instanceof JobFailure) throw err;
    const e = err as { code?: string; message?: string };
    throw new JobFailure(e.code === "not_found" ? "input_missing" : "input_unavailable", `model ${spec.model}: ${e.message ?? String(err)}`, { retryable: e.code !== "not_found", cause: err });
  }
  // An earlier instance of this deployment on this worker (an attempt whose lease was lost, or
  // one the control plane started again after losing track of this worker) is superseded.
  for (const old of supervisor.list()) {
    if (old.deploymentId === deploymentId || old.id === ctx.job.id) {
      ctx.log(`stopping the earlier instance of deployment ${deploymentId} (job ${old.id})`, "system");
      await supervisor.stop(old.id);
      supervisor.forget(old.id);
    }
  }
  // The attempt's workdir is removed when the job ends; the served model must stay. A folder of
  // the worker's workdir with a `.pid`: a worker restarted there kills a server left running.
  const home = join(dirname(ctx.workdir), `deploy-${ctx.job.id}`);
  await rm(home, { recursive: true, force: true });
  await mkdir(home, { recursive: true });
  try {
    await tar.x({ file: archive, cwd: home });
  } catch (err) {
    throw new JobFailure("invalid_model", `model ${spec.model} is not a model.tar archive: ${(err as Error).message}`, { retryable: false, cause: err });
  }
  const modelDir = existsSync(join(home, "model", "config.json")) ? join(home, "model") : home;
  if (!existsSync(join(modelDir, "config.json"))) throw new JobFailure("invalid_model", `model ${spec.model} has no config.json`, { retryable: false });

  const vllm = spec.backend !== "torch" && (await hasVllm());
  if (spec.backend === "vllm" && !vllm) throw new JobFailure("backend_unavailable", "backend vllm: `vllm` is not installed on this worker (pip install vllm), or use backend torch / auto", { retryable: false });
  const backend = vllm ? "vllm" : "torch";
  const port = spec.port !== 0 ? spec.port : await freePort(spec.host);
  const url = `http://${spec.host}:${port}`;
  const argv = vllm
    ? ["vllm", "serve", modelDir, "--served-model-name", spec.name, "--host", spec.host, "--port", String(port), ...(spec.args ?? [])]
    : [workerPython(), join(recipesDir(), "torch", "serve.py"), "--model", modelDir, "--name", spec.name, "--host", spec.host, "--port", String(port), ...(spec.args ?? [])];
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1", NEXA_JOB_ID: ctx.job.id };
  delete env.NEXA_API_KEY;
  const gpus = ctx.gpus ?? [];
  if (gpus.length > 0 || ctx.workerHasGpus === true) env.CUDA_VISIBLE_DEVICES = gpus.map((g, i) => String(g.index ?? i)).join(",");
  const logFile = join(home, "server.log");
  ctx.log(`starting ${backend} server for ${spec.name} (deployment ${deploymentId}) at ${url} (log: ${logFile})`, "system");
  await supervisor.start({ id: ctx.job.id, deploymentId, model: spec.name, backend, argv, env, cwd: home, url, logFile, pidFile: join(home, ".pid"), removeOnStop: home, graceMs: ctx.graceMs });
  let info;
  try {
    info = await supervisor.waitHealthy(ctx.job.id, { timeoutMs: spec.health_timeout_s * 1000, signal: ctx.signal });
  } catch (err) {
    const tail = supervisor.tail(ctx.job.id);
    await supervisor.stop(ctx.job.id);
    if (ctx.signal.aborted) throw new JobFailure(String(ctx.signal.reason), `stopped: ${String(ctx.signal.reason)}`, { kind: ctx.signal.reason === "canceled" ? "canceled" : "preempted" });
    const why = err instanceof DeploymentError ? err.message : String(err);
    throw new JobFailure("deploy_failed", `${backend} server for ${spec.name}: ${why}${tail.length > 0 ? `; last ${tail.length} log lines:\n${tail.join("\n")}` : ""}`, { retryable: true });
  }
  for (const line of supervisor.tail(ctx.job.id).slice(-5)) ctx.log(line, "stdout");
  const deployment = { id: ctx.job.id, deployment_id: deploymentId, url, model: spec.name, backend, pid: info.pid ?? null, started_at: info.started_at };
  await writeFile(join(ctx.outputsDir, "deployment.json"), JSON.stringify(deployment, null, 2) + "\n");
  ctx.annotate({ deployment });
  ctx.log(`${spec.name} is healthy at ${url} (pid ${info.pid ?? "?"})`, "system");
  return {};
}
