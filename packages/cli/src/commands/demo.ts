import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Job } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { startServer } from "@nexa/server";
import { builtinHandlers, WorkerAgent } from "@nexa/worker";
import type { Command } from "commander";
import pc from "picocolors";
import { duration, elapsed, printJson, printTable, status } from "../output.js";

/** The bundled example's folder (`examples/quickstart` at the repository root). */
export function quickstartDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../../../examples/quickstart");
}

/** Result of {@link runDemo}. */
export interface DemoResult {
  ok: boolean;
  jobs: Job[];
  home: string;
}

/**
 * Runs the bundled example on a temporary embedded instance: a real control plane (SQLite,
 * blobs on disk) and a real local worker; a corpus-making job, then jobs that consume its
 * output by digest. Removes the instance afterwards unless `keep`.
 */
export async function runDemo(options: { keep?: boolean; say?: (line: string) => void } = {}): Promise<DemoResult> {
  const say = options.say ?? ((l: string) => process.stderr.write(l + "\n"));
  const home = await mkdtemp(join(tmpdir(), "nexa-demo-"));
  const server = await startServer({ home, port: 0, rateLimitRps: 0 });
  say(`${pc.bold("nexa demo")}: control plane at ${server.url} (home ${home})`);
  const agent = new WorkerAgent({ url: server.url, apiKey: server.adminKey!, name: "demo-worker", concurrency: 2, gpus: 0, workdir: join(home, "work"), graceMs: 5000 });
  await agent.start();
  const client = new ForgeClient({ url: server.url, apiKey: server.adminKey! });
  const dir = quickstartDir();
  const node = process.execPath;
  try {
    say("1/3 make-corpus: writing a synthetic corpus");
    const corpus = await client.submitJob({ type: "command", name: "make-corpus", project: "demo", spec: { argv: [node, join(dir, "make-corpus.mjs")] } });
    const corpusDone = await client.waitForJob(corpus.id, 120_000);
    if (corpusDone.status !== "succeeded") throw new Error(`make-corpus ${corpusDone.status}: ${corpusDone.error?.message ?? ""}`);
    const digest = corpusDone.outputs!["corpus.jsonl"]!.digest;
    say(`    corpus.jsonl → ${digest.slice(0, 23)}…`);
    const downstream: Job[] = [];
    say("2/3 count-words: consumes the corpus by digest");
    downstream.push(
      await client.submitJob({ type: "command", name: "count-words", project: "demo", spec: { argv: [node, join(dir, "count-words.mjs")], inputs: { "corpus.jsonl": digest } } }),
    );
    if (builtinHandlers.audit !== undefined) {
      say("3/3 audit: quality filters, dedup and PII over the corpus");
      downstream.push(await client.submitJob({ type: "audit", name: "audit-corpus", project: "demo", spec: { dataset: digest, steps: ["exact_dedup", "minhash", "pii"] } as never }));
    } else {
      say("3/3 word-count again with another project, to show parallel jobs on one worker");
      downstream.push(await client.submitJob({ type: "command", name: "count-words-2", project: "demo-b", spec: { argv: [node, join(dir, "count-words.mjs")], inputs: { "corpus.jsonl": digest } } }));
    }
    const finished = await Promise.all(downstream.map((j) => client.waitForJob(j.id, 300_000)));
    const jobs = [corpusDone, ...finished];
    const ok = jobs.every((j) => j.status === "succeeded");
    return { ok, jobs, home };
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
    .description("Run the bundled example end to end on a temporary embedded instance, then exit (0 when every job succeeded).")
    .option("--keep", "keep the temporary instance folder")
    .option("--json", "print the finished jobs as JSON")
    .action(async (flags: { keep?: boolean; json?: boolean }) => {
      const r = await runDemo(flags.keep ? { keep: true } : {});
      if (flags.json) printJson({ ok: r.ok, home: r.home, jobs: r.jobs });
      else {
        printTable(
          ["job", "type", "status", "attempt", "duration", "outputs"],
          r.jobs.map((j) => [j.name, j.type, status(j.status), j.attempt, duration(elapsed(j.started_at, j.finished_at)), Object.keys(j.outputs ?? {}).join(", ")]),
        );
        process.stdout.write(r.ok ? pc.green("demo succeeded\n") : pc.red("demo failed\n"));
        if (flags.keep) process.stdout.write(`instance kept at ${r.home}\n`);
      }
      process.exitCode = r.ok ? 0 : 1;
    });
}
