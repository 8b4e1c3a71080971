import { readFile } from "node:fs/promises";
import { InvalidArgumentError, Option, type Command } from "commander";
import pc from "picocolors";
import { parse as parseYaml } from "yaml";
import {
  type AuditProgress,
  datasetStats,
  formatReport,
  parseStepList,
  PipelineConfig,
  runAudit,
  shardDataset,
  shuffleDataset,
  splitDataset,
} from "@nexa/data";

const int = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
  return n;
};

interface AuditFlags {
  out: string;
  steps?: string;
  preset?: "fineweb" | "datatrove";
  config?: string;
  textField?: string;
  idField?: string;
  onError?: "fail" | "skip";
  threads?: number;
  json?: boolean;
}

/** Reads a pipeline file (YAML or JSON), naming the file in any error. */
async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  const raw = await readFile(path, "utf8");
  let doc: unknown;
  try {
    doc = /\.json$/i.test(path) ? JSON.parse(raw) : parseYaml(raw);
  } catch (e) {
    throw new Error(`${path}: not valid ${/\.json$/i.test(path) ? "JSON" : "YAML"} (${(e as Error).message})`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error(`${path}: a pipeline file must be a mapping with steps, preset, options…`);
  return doc as Record<string, unknown>;
}

/** Flags over file over defaults. */
async function pipelineFrom(flags: AuditFlags, forcedSteps?: string[]): Promise<PipelineConfig> {
  const file = flags.config ? await loadConfigFile(flags.config) : {};
  const merged: Record<string, unknown> = { ...file };
  if (forcedSteps) merged.steps = forcedSteps;
  else if (flags.steps) merged.steps = parseStepList(flags.steps);
  if (flags.preset) merged.preset = flags.preset;
  if (flags.textField) merged.text_field = flags.textField;
  if (flags.idField) merged.id_field = flags.idField;
  if (flags.onError) merged.on_error = flags.onError;
  if (flags.threads) merged.threads = flags.threads;
  const r = PipelineConfig.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`${flags.config ? `${flags.config}: ` : ""}pipeline ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return merged as PipelineConfig;
}

function progressBar(json: boolean): { update: (p: AuditProgress) => void; done: () => void } {
  const tty = process.stderr.isTTY && !json;
  let last = 0;
  return {
    update(p) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      process.stderr.write(`\r${pc.dim(`pass ${p.pass}/${p.passes}`)} ${p.docs.toLocaleString()} docs${p.bytes ? `, ${(p.bytes / 1e6).toFixed(1)} MB` : ""}   `);
    },
    done() {
      if (tty) process.stderr.write("\r\x1b[K");
    },
  };
}

async function audit(input: string, flags: AuditFlags, forcedSteps?: string[]): Promise<void> {
  const config = await pipelineFrom(flags, forcedSteps);
  const bar = progressBar(flags.json === true);
  const ac = new AbortController();
  const onSignal = (): void => ac.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  try {
    const report = await runAudit({
      input,
      outDir: flags.out,
      config,
      signal: ac.signal,
      onProgress: bar.update,
      log: (l) => (flags.json ? undefined : process.stderr.write(pc.dim(l) + "\n")),
    });
    bar.done();
    process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + "\n" : formatReport(report) + `\n${pc.dim(`wrote ${flags.out}/kept.jsonl, removed.jsonl, report.json`)}\n`);
  } finally {
    bar.done();
    process.off("SIGINT", onSignal);
  }
}

function auditOptions(cmd: Command): Command {
  return cmd
    .requiredOption("-o, --out <dir>", "output folder for kept.jsonl, removed.jsonl, report.json")
    .option("--config <file>", "pipeline file (YAML or JSON: steps, preset, options, …)")
    .addOption(new Option("--preset <name>", "named pipeline (default fineweb)").choices(["fineweb", "datatrove"]))
    .option("--text-field <name>", "field holding the text (default text)")
    .option("--id-field <name>", "field holding the id (default id)")
    .addOption(new Option("--on-error <mode>", "bad records: fail the run or skip and count them (default fail)").choices(["fail", "skip"]))
    .option("--threads <n>", "threads for the per-document steps: this one and n-1 workers (default 1)", int("--threads", 1))
    .option("--json", "print the report as JSON");
}

/** Registers `nexa data audit|dedup|shuffle|split|shard|stats` on the `data` command. */
export function registerDataCommands(data: Command): void {
  auditOptions(
    data
      .command("audit")
      .description("Filter, dedup and redact a corpus (JSONL, .jsonl.gz, Parquet) with datatrove's heuristics")
      .argument("<input>", "dataset file")
      .option("--steps <list>", "comma-separated steps, run in this order: gopher_quality,gopher_repetition,c4,fineweb,length,regex,pii,decontaminate,exact_dedup,bloom_dedup,minhash"),
  ).action((input: string, flags: AuditFlags) => audit(input, flags));

  auditOptions(
    data
      .command("dedup")
      .description("Remove exact and/or near duplicates (MinHash LSH, datatrove's defaults)")
      .argument("<input>", "dataset file")
      .addOption(new Option("--method <m>", "exact, minhash or both").choices(["exact", "minhash", "both"]).default("both")),
  ).action((input: string, flags: AuditFlags & { method: "exact" | "minhash" | "both" }) =>
    audit(input, flags, flags.method === "both" ? ["exact_dedup", "minhash"] : flags.method === "exact" ? ["exact_dedup"] : ["minhash"]),
  );

  data
    .command("shuffle")
    .description("Seeded shuffle of a dataset of any size (external, bucketed)")
    .argument("<input>", "dataset file")
    .requiredOption("-o, --out <file>", "output file (.jsonl, .jsonl.gz or .parquet)")
    .option("--seed <n>", "seed", int("--seed", 0), 0)
    .addOption(new Option("--on-error <mode>", "bad records").choices(["fail", "skip"]).default("fail"))
    .option("--json", "print the result as JSON")
    .action(async (input: string, f: { out: string; seed: number; onError: "fail" | "skip"; json?: boolean }) => {
      const r = await shuffleDataset(input, f.out, f.seed, { onError: f.onError });
      process.stdout.write(f.json ? JSON.stringify(r) + "\n" : `shuffled ${r.records} records into ${f.out} (seed ${f.seed})${r.skipped ? `, ${r.skipped} bad records skipped` : ""}\n`);
    });

  data
    .command("split")
    .description("Split by ratios, stable under re-runs (hash of the id)")
    .argument("<input>", "dataset file")
    .requiredOption("-o, --out <dir>", "output folder (<name>.jsonl per split)")
    .option("--ratios <list>", "name=ratio pairs", "train=0.9,val=0.05,test=0.05")
    .option("--seed <n>", "seed", int("--seed", 0), 0)
    .option("--id-field <name>", "id field", "id")
    .addOption(new Option("--on-error <mode>", "bad records").choices(["fail", "skip"]).default("fail"))
    .option("--json", "print the result as JSON")
    .action(async (input: string, f: { out: string; ratios: string; seed: number; idField: string; onError: "fail" | "skip"; json?: boolean }) => {
      const ratios: Record<string, number> = {};
      for (const part of f.ratios.split(",")) {
        const [k, v] = part.split("=");
        const n = Number(v);
        if (!k || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`--ratios: "${part}" must look like name=0.9`);
        ratios[k.trim()] = n;
      }
      const r = await splitDataset(input, f.out, ratios, f.seed, { idField: f.idField, onError: f.onError });
      process.stdout.write(f.json ? JSON.stringify(r) + "\n" : Object.entries(r.outputs).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n");
    });

  data
    .command("shard")
    .description("N stable shards by the hash of the id")
    .argument("<input>", "dataset file")
    .requiredOption("-o, --out <dir>", "output folder")
    .requiredOption("--shards <n>", "number of shards", int("--shards", 1))
    .option("--id-field <name>", "id field", "id")
    .addOption(new Option("--on-error <mode>", "bad records").choices(["fail", "skip"]).default("fail"))
    .option("--json", "print the result as JSON")
    .action(async (input: string, f: { out: string; shards: number; idField: string; onError: "fail" | "skip"; json?: boolean }) => {
      const r = await shardDataset(input, f.out, f.shards, { idField: f.idField, onError: f.onError });
      process.stdout.write(f.json ? JSON.stringify(r) + "\n" : Object.entries(r.outputs).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n");
    });

  data
    .command("stats")
    .description("Record count, text sizes and field presence of a dataset")
    .argument("<input>", "dataset file")
    .option("--text-field <name>", "text field", "text")
    .option("--json", "print as JSON")
    .action(async (input: string, f: { textField: string; json?: boolean }) => {
      const s = await datasetStats(input, f.textField);
      if (f.json) {
        process.stdout.write(JSON.stringify(s, null, 2) + "\n");
        return;
      }
      process.stdout.write(
        [
          `records      ${s.records}${s.bad_records ? ` (+${s.bad_records} unreadable)` : ""}${s.no_text ? `, ${s.no_text} without text` : ""}`,
          `text         ${(s.bytes / 1e6).toFixed(2)} MB, ${s.chars.total} chars, ${s.words.total} words`,
          `chars/doc    min ${s.chars.min}  p50 ${s.chars.p50}  p90 ${s.chars.p90}  p99 ${s.chars.p99}  max ${s.chars.max}  mean ${s.chars.mean.toFixed(1)}`,
          `fields       ${Object.entries(s.fields).map(([k, v]) => `${k} (${v})`).join(", ")}`,
        ].join("\n") + "\n",
      );
    });
}
