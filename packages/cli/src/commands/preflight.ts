import { existsSync } from "node:fs";
import type { PreflightCheckReport, PreflightReport } from "@nexa/core";
import Table from "cli-table3";
import type { Command } from "commander";
import pc from "picocolors";
import { resolveClient, withClientOptions, type ClientFlags } from "../client-config.js";
import { duration, printFields, printJson } from "../output.js";
import { readStructured, submissionFrom } from "./jobs.js";

interface PreflightFlags extends ClientFlags {
  type?: string;
  spec?: string;
  gpus?: string;
  gpuType?: string;
  cpus?: string;
  memory?: string;
  label?: string[];
  maxRuntime?: string;
  maxCost?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A check's status, coloured. */
function mark(status: PreflightCheckReport["status"]): string {
  return status === "pass" ? pc.green("pass") : status === "warn" ? pc.yellow("warn") : pc.red("fail");
}

/** Prints checks as a table: status, check, and the message wrapped to the terminal's width. */
export function printChecks(checks: readonly PreflightCheckReport[]): void {
  const width = Math.max(40, (process.stdout.columns ?? 120) - 26);
  const t = new Table({ head: ["", "check", "message"].map((h) => pc.bold(h)), colWidths: [6, 15, width], wordWrap: true, style: { head: [], border: [] } });
  for (const c of checks) t.push([mark(c.status), c.name, c.message]);
  process.stdout.write(t.toString() + "\n");
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 3 : 1)} GiB`;

/** Prints a preflight report: the checks, then the estimates behind them. */
export function printPreflight(r: PreflightReport): void {
  printChecks(r.checks);
  const e = r.estimate;
  const m = e.memory;
  printFields([
    ["status", `${mark(r.status)}${r.ok ? "" : pc.red(" — this submission would be rejected")}`],
    ["parameters", m ? `${m.parameters.toLocaleString("en-US")}${m.trainable_parameters !== m.parameters ? ` (${m.trainable_parameters.toLocaleString("en-US")} trainable)` : ""}` : null],
    [
      "memory",
      m
        ? `${gib(m.total_bytes)} ${m.per === "gpu" ? `per GPU × ${m.gpus}` : "of host memory (CPU)"} = weights ${gib(m.weights_bytes)} + gradients ${gib(m.gradients_bytes)} + optimizer ${gib(m.optimizer_bytes)} + activations ${gib(m.activations_bytes)} + overhead ${gib(m.overhead_bytes)}`
        : null,
    ],
    ["device", e.device],
    ["tokens", e.tokens === null ? null : `${Math.round(e.tokens).toLocaleString("en-US")}${e.tokens_per_s === null ? "" : ` at ${Math.round(e.tokens_per_s).toLocaleString("en-US")} tokens/s`}`],
    ["duration", e.time_s === null ? null : duration(e.time_s)],
    ["cost", e.cost_usd === null ? null : `$${e.cost_usd.toFixed(4)}`],
  ]);
}

/** `--spec` names a file (JSON or YAML) or is inline JSON; as inline JSON either way. */
function specJson(spec: string | undefined): string | undefined {
  if (spec === undefined || spec.trimStart().startsWith("{") || !existsSync(spec)) return spec;
  return JSON.stringify(readStructured(spec));
}

/** Registers `nexa preflight FILE | --type T --spec SPEC`. */
export function registerPreflightCommand(program: Command): void {
  withClientOptions(
    program
      .command("preflight")
      .description("Check a job submission before it queues: dataset, tokenizer, model config, memory against the registered workers, duration and cost. Exit 1 when it would fail.")
      .argument("[file]", "a job submission file (YAML or JSON: type, spec, requirements, limits), as `nexa jobs submit -f` takes")
      .option("-t, --type <type>", "job type (with --spec, instead of a file)")
      .option("--spec <file|json>", "the spec: a JSON or YAML file, or inline JSON (merged over the file's)")
      .option("--gpus <n>", "GPUs per job (0: CPU training)")
      .option("--gpu-type <type>", "GPU type needed, e.g. H100")
      .option("--cpus <n>", "CPUs needed")
      .option("--memory <gb>", "memory needed, GB")
      .option("--label <k=v>", "worker label needed (repeatable)", collect)
      .option("--max-runtime <seconds>", "guardrail to check the duration against")
      .option("--max-cost <usd>", "guardrail to check the cost against"),
  ).action(async (file: string | undefined, flags: PreflightFlags) => {
    if (file === undefined && flags.type === undefined) throw new Error("give a job submission file (nexa preflight job.yaml), or --type and --spec");
    const sub = submissionFrom({ ...flags, ...(file !== undefined ? { file } : {}), ...(flags.spec !== undefined ? { spec: specJson(flags.spec) } : {}) }, []);
    const report = await resolveClient(flags).preflight(sub);
    if (flags.json) printJson(report);
    else printPreflight(report);
    process.exitCode = report.ok ? 0 : 1;
  });
}
