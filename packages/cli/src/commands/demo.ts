import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { WorkflowRun } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import type { Command } from "commander";
import pc from "picocolors";
import YAML from "yaml";
import { duration, elapsed, printJson, printTable, status } from "../output.js";

/** The bundled example's folder (`examples/quickstart` at the repository root). */
export function quickstartDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../../../examples/quickstart");
}

/** Result of {@link runDemo}. */
export interface DemoResult {
  ok: boolean;
  run: WorkflowRun;
  home: string;
}

/**
 * Runs the bundled quick-start workflow on a temporary embedded instance: a real control plane
 * (SQLite, blobs on disk) and a real local worker. Removes the instance afterwards unless `keep`.
 */
export async function runDemo(options: { keep?: boolean; say?: (line: string) => void } = {}): Promise<DemoResult> {
  const say = options.say ?? ((l: string) => process.stderr.write(l + "\n"));
  const { startServer } = await import("@nexa/server");
  const { builtinHandlers, WorkerAgent } = await import("@nexa/worker");
  const home = await mkdtemp(join(tmpdir(), "nexa-demo-"));
  const server = await startServer({ home, port: 0, rateLimitRps: 0 });
  say(`${pc.bold("nexa demo")}: control plane at ${server.url} (home ${home})`);
  const agent = new WorkerAgent({ url: server.url, apiKey: server.adminKey!, name: "demo-worker", concurrency: 2, gpus: 0, workdir: join(home, "work"), graceMs: 5000 });
  await agent.start();
  const client = new ForgeClient({ url: server.url, apiKey: server.adminKey! });
  const dir = quickstartDir();
  try {
    const upload = async (file: string) => (await client.putBlob(new Uint8Array(await readFile(join(dir, file))), { mediaType: "text/javascript" })).digest;
    const workflow = YAML.parse(await readFile(join(dir, "workflow.yaml"), "utf8")) as { steps: Record<string, unknown>; outputs: Record<string, string> };
    if (builtinHandlers.audit === undefined) {
      // This build has no audit handler: run the rest of the pipeline.
      delete workflow.steps.audit;
      for (const k of Object.keys(workflow.outputs)) if (workflow.outputs[k]!.includes("steps.audit")) delete workflow.outputs[k];
    }
    const run = await client.runWorkflow({
      workflow: workflow as unknown as Record<string, unknown>,
      inputs: { node: process.execPath, make_corpus: await upload("make-corpus.mjs"), count_words: await upload("count-words.mjs") },
    });
    say(`workflow ${run.id}: ${Object.keys(run.steps).join(" → ")}`);
    const seen = new Set<string>();
    const done = await client.waitForWorkflow(run.id, {
      timeoutMs: 300_000,
      onUpdate: (r) => {
        for (const [name, s] of Object.entries(r.steps)) {
          const key = `${name}:${s.status}`;
          if (seen.has(key) || s.status === "queued") continue;
          seen.add(key);
          say(`  ${name.padEnd(8)} ${status(s.status)}${s.cache_hit ? pc.dim(" (cache hit)") : ""}`);
        }
      },
    });
    const report = done.outputs.report;
    if (typeof report === "string") {
      const r = (await (await client.getBlob(report)).json()) as { docs_in: number; kept: number; steps: { drops: Record<string, number>; counts: Record<string, number>; type: string }[] };
      const drops = r.steps.flatMap((st) => Object.entries(st.drops).map(([k, v]) => `${k} ${v}`));
      const pii = r.steps.filter((st) => st.type === "pii").flatMap((st) => Object.entries(st.counts).map(([k, v]) => `${k} ${v}`));
      say(`audit kept ${r.kept} of ${r.docs_in} documents (removed: ${drops.join(", ") || "none"}; PII redacted: ${pii.join(", ") || "none"})`);
    }
    return { ok: done.status === "succeeded", run: done, home };
  } finally {
    await agent.stop();
    await server.close();
    if (!options.keep) await rm(home, { recursive: true, force: true });
  }
}

/** Registers `nexa demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("Run the bundled quick-start workflow end to end on a temporary embedded instance, then exit (0 when it succeeded).")
    .option("--keep", "keep the temporary instance folder")
    .option("--json", "print the finished run as JSON")
    .action(async (flags: { keep?: boolean; json?: boolean }) => {
      const r = await runDemo(flags.keep ? { keep: true } : {});
      if (flags.json) printJson({ ok: r.ok, home: r.home, run: r.run });
      else {
        printTable(
          ["step", "status", "job", "duration", "outputs"],
          Object.entries(r.run.steps).map(([name, s]) => [name, status(s.status), s.job_id, duration(elapsed(s.started_at ?? null, s.finished_at ?? null)), Object.keys(s.outputs).join(", ")]),
        );
        process.stdout.write(r.ok ? pc.green(`demo succeeded: workflow ${r.run.id}\n`) : pc.red(`demo failed: ${r.run.error ?? r.run.status}\n`));
        if (flags.keep) process.stdout.write(`instance kept at ${r.home}\n`);
      }
      process.exitCode = r.ok ? 0 : 1;
    });
}
