import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { WorkflowRun } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import type { Command } from "commander";
import pc from "picocolors";
import YAML from "yaml";
import { nexaHome } from "../client-config.js";
import { duration, elapsed, printJson, printTable, status } from "../output.js";
import { ensureRecipePython, PythonSetupError } from "./python-env.js";
import { prepareInputs } from "./workflows.js";

/** The bundled examples `nexa demo` runs. */
export const DEMO_EXAMPLES = ["tiny-gpt", "quickstart"] as const;
export type DemoExample = (typeof DEMO_EXAMPLES)[number];

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

/** A bundled example's folder (`examples/<name>` at the repository root). */
export function exampleDir(name: DemoExample): string {
  return join(REPO, "examples", name);
}

/** The quick-start example's folder. */
export function quickstartDir(): string {
  return exampleDir("quickstart");
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** @default "tiny-gpt" */
  example?: DemoExample;
  /** Leave the instance (control plane, worker, deployment) running; the result's `stop` ends it. @default false */
  keep?: boolean;
  /** tiny-gpt: optimizer steps (the workflow's `steps` input). @default the workflow's default */
  steps?: number;
  /** Progress lines. @default stderr */
  say?: (line: string) => void;
  /** tiny-gpt: where a Python venv is set up when none has the recipe's modules. @default NEXA_HOME */
  pythonHome?: string;
  /** The temporary instance's database (`postgres://…` runs it on PostgreSQL). @default SQLite in its folder */
  databaseUrl?: string;
  /** Aborting stops the run and the instance (Ctrl-C); `runDemo` then rejects. */
  signal?: AbortSignal;
}

/** What the tiny-gpt run produced, read back from the control plane. */
export interface TinyGptSummary {
  python: string;
  audit?: { docs_in: number; kept: number; removed: number };
  /** Loss series of the train job (`GET /v1/jobs/:id/metrics`). */
  train?: { steps: number; first_loss: number; last_loss: number; eval_loss: number | null };
  /** `id`: the control plane's `dep_…` id; `url`: the model server itself (the gateway is in front of it). */
  deployment?: { id: string; url: string; model: string };
  eval?: { metrics: Record<string, number>; assertion_pass_rate: number | null; samples: number; endpoint: { base_url?: string; deployment?: string; model: string } };
  /** One completion from the deployed model through the gateway, after the run. */
  sample?: { prompt: string; reply: string };
}

/** Result of {@link runDemo}. */
export interface DemoResult {
  ok: boolean;
  example: DemoExample;
  run: WorkflowRun;
  home: string;
  /** The control plane's URL and admin key (only reachable while the instance runs: `keep`). */
  url: string;
  apiKey: string;
  tinyGpt?: TinyGptSummary;
  /** Stops a kept instance and removes its folder (a no-op once stopped). */
  stop: () => Promise<void>;
}

/** Stage lines prefixed with the seconds since the demo started. */
function stager(say: (line: string) => void): (line: string) => void {
  const t0 = Date.now();
  return (line) => say(`${pc.dim(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s]`)} ${line}`);
}

/**
 * Runs a bundled example end to end on a temporary embedded instance: a real control plane
 * (SQLite unless `databaseUrl`, blobs on disk) and a real local worker. `tiny-gpt` (the default) first finds or sets up
 * the Python the torch recipe needs (see {@link ensureRecipePython}), then audits, packs, trains,
 * deploys and evaluates, showing loss as it falls. The instance is stopped and removed afterwards
 * unless `keep` (then the result's `stop` does it); a run that throws always stops it.
 *
 * @example
 * const r = await runDemo({ steps: 40 });
 * console.log(r.ok, r.tinyGpt?.train);
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const example = options.example ?? "tiny-gpt";
  const stage = stager(options.say ?? ((l: string) => process.stderr.write(l + "\n")));
  let python: string | undefined;
  const savedPython = process.env.NEXA_PYTHON;
  if (example === "tiny-gpt") {
    stage(`${pc.bold("python")}: looking for a Python with torch, transformers, numpy, safetensors`);
    const pythonHome = options.pythonHome ?? nexaHome();
    const env = await ensureRecipePython({
      home: pythonHome,
      requirements: join(REPO, "recipes", "torch", "requirements.txt"),
      candidates: [join(REPO, ".venv", "bin", "python"), join(pythonHome, "venv", "bin", "python"), "python3"],
      say: stage,
    });
    python = env.python;
    stage(`${pc.bold("python")}: ${python}${env.source === "env" ? " (NEXA_PYTHON)" : ""}`);
    // The in-process worker's train and deploy handlers read it when they start a process.
    process.env.NEXA_PYTHON = python;
  }

  const { startServer } = await import("@nexa/server");
  const { builtinHandlers, WorkerAgent } = await import("@nexa/worker");
  const home = await mkdtemp(join(tmpdir(), "nexa-demo-"));
  const server = await startServer({ home, port: 0, rateLimitRps: 0, ...(options.databaseUrl !== undefined ? { databaseUrl: options.databaseUrl } : {}) });
  stage(`${pc.bold("nexa demo")} ${example}: control plane at ${server.url} (home ${home})`);
  const agent = new WorkerAgent({ url: server.url, apiKey: server.adminKey!, name: "demo-worker", concurrency: 2, gpus: 0, workdir: join(home, "work"), graceMs: 5000 });
  await agent.start();
  const client = new ForgeClient({ url: server.url, apiKey: server.adminKey! });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Through the deployments API, as a user would; stopping the worker then ends their servers.
    for (const d of await client.listDeployments().catch(() => [])) {
      if (d.status !== "stopped" && d.status !== "failed") await client.stopDeployment(d.id).catch(() => {});
    }
    await agent.stop();
    await server.close();
    await rm(home, { recursive: true, force: true });
    if (savedPython === undefined) delete process.env.NEXA_PYTHON;
    else process.env.NEXA_PYTHON = savedPython;
  };
  let result: { ok: boolean; run: WorkflowRun; tinyGpt?: TinyGptSummary };
  const running = example === "tiny-gpt" ? runTinyGpt(client, stage, { steps: options.steps, python: python! }) : runQuickstart(client, stage, builtinHandlers.audit !== undefined);
  // After an abort the run is left to fail against the stopped instance; that failure is not news.
  running.catch(() => {});
  const signal = options.signal;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error(`nexa demo stopped: ${String(signal?.reason ?? "aborted")}`));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    result = await Promise.race([running, aborted]);
  } catch (err) {
    await stop();
    throw err;
  } finally {
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
  if (!options.keep) await stop();
  return { ...result, example, home, url: server.url, apiKey: server.adminKey!, stop };
}

/** Prints each step's status changes as they happen. */
function stepPrinter(stage: (line: string) => void, onChange?: (name: string, step: WorkflowRun["steps"][string]) => Promise<void>) {
  const seen = new Set<string>();
  const pending: Promise<void>[] = [];
  return {
    onUpdate(r: WorkflowRun) {
      for (const [name, s] of Object.entries(r.steps)) {
        const key = `${name}:${s.status}`;
        if (seen.has(key) || s.status === "queued") continue;
        seen.add(key);
        stage(`${pc.bold(name.padEnd(8))} ${status(s.status)}${s.cache_hit ? pc.dim(" (cache hit)") : ""}${s.error ? ` ${pc.red(s.error)}` : ""}`);
        if (onChange) pending.push(onChange(name, s));
      }
    },
    /** Waits for the follow-ups started by changes (reading reports). */
    settled: () => Promise.all(pending),
  };
}

async function runQuickstart(client: ForgeClient, stage: (line: string) => void, hasAudit: boolean): Promise<{ ok: boolean; run: WorkflowRun }> {
  const dir = quickstartDir();
  const upload = async (file: string) => (await client.putBlob(new Uint8Array(await readFile(join(dir, file))), { mediaType: "text/javascript" })).digest;
  const workflow = YAML.parse(await readFile(join(dir, "workflow.yaml"), "utf8")) as { steps: Record<string, unknown>; outputs: Record<string, string> };
  if (!hasAudit) {
    // This build has no audit handler: run the rest of the pipeline.
    delete workflow.steps.audit;
    for (const k of Object.keys(workflow.outputs)) if (workflow.outputs[k]!.includes("steps.audit")) delete workflow.outputs[k];
  }
  const run = await client.runWorkflow({
    workflow: workflow as unknown as Record<string, unknown>,
    inputs: { node: process.execPath, make_corpus: await upload("make-corpus.mjs"), count_words: await upload("count-words.mjs") },
  });
  stage(`workflow ${run.id}: ${Object.keys(run.steps).join(" → ")}`);
  const printer = stepPrinter(stage);
  const done = await client.waitForWorkflow(run.id, { timeoutMs: 300_000, onUpdate: (r) => printer.onUpdate(r) });
  const report = done.outputs.report;
  if (typeof report === "string") {
    const r = (await (await client.getBlob(report)).json()) as { docs_in: number; kept: number; steps: { drops: Record<string, number>; counts: Record<string, number>; type: string }[] };
    const drops = r.steps.flatMap((st) => Object.entries(st.drops).map(([k, v]) => `${k} ${v}`));
    const pii = r.steps.filter((st) => st.type === "pii").flatMap((st) => Object.entries(st.counts).map(([k, v]) => `${k} ${v}`));
    stage(`audit kept ${r.kept} of ${r.docs_in} documents (removed: ${drops.join(", ") || "none"}; PII redacted: ${pii.join(", ") || "none"})`);
  }
  return { ok: done.status === "succeeded", run: done };
}

/** The prompt of the demo's last request: the first words of Exodus 32:7, a chapter it trained on. */
const SAMPLE_PROMPT = "7 And the LORD said unto Moses, Go,";

async function runTinyGpt(client: ForgeClient, stage: (line: string) => void, o: { steps: number | undefined; python: string }): Promise<{ ok: boolean; run: WorkflowRun; tinyGpt: TinyGptSummary }> {
  const dir = exampleDir("tiny-gpt");
  const file = join(dir, "workflow.yaml");
  const text = await readFile(file, "utf8");
  const given: Record<string, string> = {};
  if (o.steps !== undefined) given.steps = String(o.steps);
  const { inputs, uploaded } = await prepareInputs(client, file, text, given);
  stage(`uploaded ${uploaded.map((u) => u.path.slice(dir.length + 1)).join(", ")}`);
  const run = await client.runWorkflow({ workflow: text, inputs });
  const totalSteps = Number(inputs.steps ?? (YAML.parse(text) as { inputs: { steps: { default: number } } }).inputs.steps.default);
  stage(`workflow ${run.id}: ${Object.keys(run.steps).join(" → ")}`);
  const summary: TinyGptSummary = { python: o.python };

  // Loss as it falls: the train job's metric series, read while it runs.
  let trainJob: string | null = null;
  let trainDone = false;
  let shown = 0;
  const showLoss = async () => {
    if (trainJob === null) return;
    const series = (await client.getMetrics(trainJob)).series;
    const loss = series.loss ?? [];
    const evalLoss = new Map((series.eval_loss ?? []).map((p) => [p.step, p.value]));
    const every = Math.max(1, Math.round(totalSteps / 10));
    for (const p of loss) {
      if (p.step <= shown || (p.step % every !== 0 && p.step !== 1 && p.step !== totalSteps)) continue;
      shown = p.step;
      const ev = evalLoss.get(p.step);
      stage(`  train step ${String(p.step).padStart(String(totalSteps).length)}/${totalSteps}  loss ${p.value.toFixed(3)}${ev !== undefined ? `  eval loss ${ev.toFixed(3)}` : ""}`);
    }
    if (loss.length > 0) {
      const evs = series.eval_loss ?? [];
      summary.train = { steps: loss[loss.length - 1]!.step, first_loss: loss[0]!.value, last_loss: loss[loss.length - 1]!.value, eval_loss: evs.length > 0 ? evs[evs.length - 1]!.value : null };
    }
  };
  const lossLoop = (async () => {
    while (!trainDone) {
      await new Promise((r) => setTimeout(r, 1500));
      await showLoss().catch(() => {});
    }
  })();

  const blobJson = async <T,>(ref: unknown): Promise<T> => (await (await client.getBlob(String((ref as { digest?: string }).digest ?? ref))).json()) as T;
  const printer = stepPrinter(stage, async (name, s) => {
    if (name === "train" && s.status === "running") trainJob = s.job_id;
    if (name === "audit" && s.status === "succeeded") {
      const r = await blobJson<{ docs_in: number; kept: number; removed: number; steps: { name: string; drops: Record<string, number> }[] }>(s.outputs["report.json"]);
      summary.audit = { docs_in: r.docs_in, kept: r.kept, removed: r.removed };
      const drops = r.steps.flatMap((st) => Object.entries(st.drops).map(([k, v]) => `${st.name}:${k} ${v}`));
      stage(`  audit kept ${r.kept} of ${r.docs_in} documents (removed: ${drops.join(", ") || "none"})`);
    }
    if (name === "train" && s.status !== "running") {
      trainJob = s.job_id;
      trainDone = true;
      await showLoss();
      if (summary.train) stage(`  train loss ${summary.train.first_loss.toFixed(3)} → ${summary.train.last_loss.toFixed(3)} in ${summary.train.steps} steps${summary.train.eval_loss !== null ? ` (held-out loss ${summary.train.eval_loss.toFixed(3)})` : ""}`);
    }
    if (name === "deploy" && s.status === "succeeded") {
      const d = await blobJson<{ deployment_id: string; url: string; model: string }>(s.outputs["deployment.json"]);
      summary.deployment = { id: d.deployment_id, url: d.url, model: d.model };
      stage(`  deployment ${d.deployment_id}: ${d.model} is served at ${d.url}, behind the gateway at ${client.url}/v1/gateway`);
    }
    if (name === "evaluate" && s.status === "succeeded") {
      const r = await blobJson<{ metrics: Record<string, number>; assertions?: { pass_rate: number }; counts: { samples: number }; endpoint: NonNullable<TinyGptSummary["eval"]>["endpoint"] }>(s.outputs["report.json"]);
      summary.eval = { metrics: r.metrics, assertion_pass_rate: r.assertions?.pass_rate ?? null, samples: r.counts.samples, endpoint: r.endpoint };
      const scores = Object.entries(r.metrics).filter(([k]) => k !== "assertion_pass_rate").map(([k, v]) => `${k} ${v.toFixed(k === "rougeL" ? 3 : 1)}`);
      stage(`  eval on ${r.counts.samples} held-out verses: ${scores.join(", ")}; non-empty replies ${((r.assertions?.pass_rate ?? 0) * 100).toFixed(0)}%`);
    }
  });
  let done: WorkflowRun;
  try {
    done = await client.waitForWorkflow(run.id, { timeoutMs: 1_800_000, onUpdate: (r) => printer.onUpdate(r) });
    await printer.settled();
  } finally {
    trainDone = true;
    await lossLoop;
  }
  const ok = done.status === "succeeded";
  if (ok && summary.deployment) {
    const res = await fetch(`${client.url}/v1/gateway/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${client.apiKey}` },
      body: JSON.stringify({ model: summary.deployment.model, messages: [{ role: "user", content: SAMPLE_PROMPT }], max_tokens: 24, temperature: 0, stop: ["\n"] }),
    });
    const body = (await res.json().catch(() => ({}))) as { choices?: { message?: { content?: string } }[]; error?: { message?: string } };
    if (res.ok) {
      summary.sample = { prompt: SAMPLE_PROMPT, reply: body.choices?.[0]?.message?.content ?? "" };
      stage(`  through the gateway: ${SAMPLE_PROMPT}${pc.cyan(summary.sample.reply)}`);
    } else stage(pc.yellow(`  the gateway answered ${res.status}: ${body.error?.message ?? "(no message)"}`));
  }
  return { ok, run: done, tinyGpt: summary };
}

/** What a user can do with a finished tiny-gpt demo. */
function nextSteps(r: DemoResult, kept: boolean): string[] {
  const d = r.tinyGpt?.deployment;
  if (!d) return [];
  const body = JSON.stringify({ model: d.model, messages: [{ role: "user", content: SAMPLE_PROMPT }], max_tokens: 24, temperature: 0 });
  const lines = [pc.bold("next:")];
  if (kept) {
    lines.push(
      `  ${d.model} is served until Ctrl-C; ask it through the gateway (or straight at ${d.url}/v1):`,
      `  curl -s ${r.url}/v1/gateway/chat/completions -H 'authorization: Bearer ${r.apiKey}' -H 'content-type: application/json' -d '${body}'`,
      `  NEXA_URL=${r.url} NEXA_API_KEY=${r.apiKey} nexa deployments list`,
    );
  } else {
    lines.push("  nexa demo --keep                                  # the same, and keep serving the model until Ctrl-C");
  }
  lines.push(
    "  nexa up                                           # a lasting instance, then:",
    "  nexa run examples/tiny-gpt/workflow.yaml --watch  # the same pipeline on it (--input steps=1000 trains longer)",
    "  nexa deployments list                             # where tiny-gpt is served; ask it through the gateway",
    "                                                    # (NEXA_API_KEY: the api_key in ~/.nexa/credentials):",
    `  curl -s http://127.0.0.1:8000/v1/gateway/chat/completions -H "authorization: Bearer $NEXA_API_KEY" -H 'content-type: application/json' -d '${body}'`,
  );
  return lines;
}

/** Registers `nexa demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .argument("[example]", `the bundled example to run: ${DEMO_EXAMPLES.join(" or ")}`, "tiny-gpt")
    .description(
      "Run a bundled example end to end on a temporary embedded instance, then exit (0 when it succeeded). " +
        "tiny-gpt (the default): audit → pack → train a tiny GPT on the CPU → deploy → evaluate, setting up the Python it needs on first use; quickstart: the Node.js-only pipeline.",
    )
    .option("--keep", "keep the instance (and the served model) running until Ctrl-C")
    .option("--steps <n>", "tiny-gpt: training steps (default: the workflow's, 300)")
    .option("--json", "print the finished run as JSON")
    .action(async (name: string, flags: { keep?: boolean; json?: boolean; steps?: string }) => {
      if (!(DEMO_EXAMPLES as readonly string[]).includes(name)) throw new Error(`nexa demo: unknown example ${JSON.stringify(name)}; choose ${DEMO_EXAMPLES.join(" or ")}`);
      const steps = flags.steps === undefined ? undefined : Number(flags.steps);
      if (steps !== undefined && (!Number.isInteger(steps) || steps < 1)) throw new Error(`--steps: expected a positive whole number, got ${JSON.stringify(flags.steps)}`);
      let r: DemoResult;
      // Ctrl-C during the run stops the instance and removes its folder before exiting.
      const interrupt = new AbortController();
      const onSigint = () => {
        process.stderr.write("\nstopping the demo instance…\n");
        interrupt.abort("interrupted");
      };
      process.once("SIGINT", onSigint);
      try {
        r = await runDemo({ example: name as DemoExample, keep: flags.keep === true, signal: interrupt.signal, ...(steps !== undefined ? { steps } : {}) });
      } catch (err) {
        if (interrupt.signal.aborted) {
          process.exitCode = 130;
          return;
        }
        if (err instanceof PythonSetupError) {
          process.stderr.write(pc.red(`nexa demo: ${err.message}\n`));
          process.exitCode = 1;
          return;
        }
        throw err;
      } finally {
        process.off("SIGINT", onSigint);
      }
      if (flags.json) printJson({ ok: r.ok, example: r.example, home: r.home, ...(r.tinyGpt ? { tiny_gpt: r.tinyGpt } : {}), run: r.run });
      else {
        printTable(
          ["step", "status", "job", "duration", "outputs"],
          Object.entries(r.run.steps).map(([step, s]) => [step, status(s.status), s.job_id, duration(elapsed(s.started_at ?? null, s.finished_at ?? null)), Object.keys(s.outputs).join(", ")]),
        );
        process.stdout.write(r.ok ? pc.green(`demo succeeded: workflow ${r.run.id}\n`) : pc.red(`demo failed: ${r.run.error ?? r.run.status}\n`));
        if (r.ok) for (const line of nextSteps(r, flags.keep === true)) process.stdout.write(line + "\n");
      }
      process.exitCode = r.ok ? 0 : 1;
      if (flags.keep) {
        process.stderr.write(`instance running at ${r.url} (home ${r.home}); Ctrl-C stops it\n`);
        await new Promise<void>((res) => {
          process.once("SIGINT", () => res());
          process.once("SIGTERM", () => res());
        });
        await r.stop();
      }
    });
}
