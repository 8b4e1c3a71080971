import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { EvalMetric } from "@nexa/core";
import { OpenAIClient, compareRuns, runEvaluation, type EvalReport } from "@nexa/llm";

const METRICS = EvalMetric.options;

function parseMetrics(value: string): EvalMetric[] {
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(METRICS as readonly string[]).includes(n));
  if (bad.length) throw new InvalidArgumentError(`unknown metric ${bad.join(", ")}; choose from ${METRICS.join(", ")}`);
  if (names.length === 0) throw new InvalidArgumentError("give at least one metric");
  return names as EvalMetric[];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a non-negative integer");
  return n;
}

function number(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
}

const fmt = (v: number | undefined, digits = 4) => (v === undefined || Number.isNaN(v) ? "-" : v.toFixed(digits));

function printReport(report: EvalReport, out: string): void {
  const rows = Object.entries(report.metrics).map(([name, v]) => {
    const ci = report.confidence_intervals[name];
    return [name, fmt(v), ci ? `[${fmt(ci.low)}, ${fmt(ci.high)}]` : ""];
  });
  const w0 = Math.max(6, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(5, ...rows.map((r) => r[1]!.length));
  process.stdout.write(`${"metric".padEnd(w0)}  ${"value".padStart(w1)}  95% CI\n`);
  for (const [a, b, c] of rows) process.stdout.write(`${a!.padEnd(w0)}  ${b!.padStart(w1)}  ${c}\n`);
  const c = report.counts;
  process.stdout.write(`\n${c.scored}/${c.samples} samples scored (${c.errors} errors, ${c.cached} cached); wrote ${join(out, "samples.jsonl")} and ${join(out, "report.json")}\n`);
}

/**
 * Registers `nexa eval run|compare` on the root program.
 *
 * @example
 * nexa eval run --endpoint http://127.0.0.1:8001/v1 --model qwen --dataset eval.jsonl --metrics exact_match,f1,bleu --out runs/qwen
 * nexa eval compare runs/base runs/tuned --json
 */
export function registerEvalCommands(program: Command): void {
  const evalCmd = program.command("eval").description("Evaluate a model endpoint on a dataset; compare runs.");

  evalCmd
    .command("run")
    .description("Run an eval set against an OpenAI-compatible endpoint; writes DIR/samples.jsonl and DIR/report.json.")
    .requiredOption("--endpoint <url>", "base URL of the OpenAI-compatible API, up to /v1")
    .requiredOption("--model <name>", "model name sent to the endpoint")
    .requiredOption("--dataset <file>", "eval set as JSONL")
    .requiredOption("--out <dir>", "output folder")
    .addOption(new Option("--metrics <list>", `comma-separated: ${METRICS.join(",")}`).argParser(parseMetrics).default(["exact_match", "f1"] as EvalMetric[], "exact_match,f1"))
    .option("--input-field <name>", "field holding the input", "prompt")
    .option("--reference-field <name>", "field holding the reference (a string or a list)", "answer")
    .option("--id-field <name>", "field holding a row id", "id")
    .option("--choices-field <name>", "field holding options, for multiple_choice", "choices")
    .option("--concurrency <n>", "requests in flight at once", positiveInt, 8)
    .option("--rpm <n>", "requests per minute limit", positiveInt)
    .option("--tpm <n>", "tokens per minute limit", positiveInt)
    .option("--timeout <s>", "per-request timeout in seconds", number, 120)
    .option("--retries <n>", "retries per request", nonNegativeInt, 5)
    .option("--system <text>", "system prompt")
    .option("--prompt-template <text>", "user message template with {{ input }} and row fields")
    .option("--temperature <t>", "sampling temperature", number, 0)
    .option("--max-tokens <n>", "max tokens per reply", positiveInt)
    .option("--seed <n>", "sampling seed", number)
    .option("--api-key-env <name>", "environment variable holding the endpoint's API key")
    .option("--bootstrap <n>", "bootstrap resamples for confidence intervals (0 = none)", nonNegativeInt, 1000)
    .option("--on-error <mode>", "fail | skip a sample whose requests fail", "fail")
    .option("--no-cache", "do not reuse replies cached in DIR/.nexa-eval from an earlier run")
    .option("--json", "print the report as JSON")
    .action(async (o: Record<string, unknown>) => {
      const out = resolve(o.out as string);
      const datasetPath = resolve(o.dataset as string);
      let bytes: Buffer;
      try {
        bytes = await readFile(datasetPath);
      } catch (e) {
        process.stderr.write(`error: cannot read dataset ${datasetPath}: ${(e as Error).message}\n`);
        process.exitCode = 1;
        return;
      }
      if (o.onError !== "fail" && o.onError !== "skip") {
        process.stderr.write(`error: --on-error must be fail or skip\n`);
        process.exitCode = 2;
        return;
      }
      const apiKeyEnv = o.apiKeyEnv as string | undefined;
      const spec = {
        endpoint: {
          base_url: o.endpoint as string,
          model: o.model as string,
          ...(apiKeyEnv ? { api_key_secret: apiKeyEnv } : {}),
          max_concurrency: o.concurrency as number,
          ...(o.rpm ? { requests_per_minute: o.rpm as number } : {}),
          ...(o.tpm ? { tokens_per_minute: o.tpm as number } : {}),
          timeout_s: o.timeout as number,
          max_retries: o.retries as number,
        },
        dataset: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
        input_field: o.inputField as string,
        reference_field: o.referenceField as string,
        id_field: o.idField as string,
        choices_field: o.choicesField as string,
        metrics: o.metrics as EvalMetric[],
        ...(o.system ? { system: o.system as string } : {}),
        ...(o.promptTemplate ? { prompt_template: o.promptTemplate as string } : {}),
        sampling: {
          temperature: o.temperature as number,
          ...(o.maxTokens ? { max_tokens: o.maxTokens as number } : {}),
          ...(o.seed !== undefined ? { seed: o.seed as number } : {}),
        },
        bootstrap_samples: o.bootstrap as number,
        on_error: o.onError,
      };
      const ac = new AbortController();
      const onSigint = () => {
        process.stderr.write("\ninterrupted: finishing requests in flight and saving progress (Ctrl-C again to quit)\n");
        ac.abort(new Error("interrupted"));
        process.once("SIGINT", () => process.exit(130));
      };
      process.once("SIGINT", onSigint);
      const tty = process.stderr.isTTY;
      let lastDraw = 0;
      try {
        // Replies are cached by request (endpoint, body), so they are shared by every run into this
        // folder; progress belongs to one exact spec, so a changed option starts a fresh list (that
        // then finds its unchanged requests in the cache).
        const state = join(out, ".nexa-eval");
        const progress = join(state, "progress", createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 16));
        const outcome = await runEvaluation({
          spec,
          datasetPath,
          outDir: out,
          checkpointDir: progress,
          ...(o.cache === false ? {} : { cacheDir: join(state, "cache") }),
          secret: (name) => process.env[name],
          signal: ac.signal,
          graceMs: 30_000,
          log: (line) => process.stderr.write(`${line}\n`),
          onProgress: (done, total) => {
            if (!tty) return;
            const now = Date.now();
            if (now - lastDraw < 100 && done < total) return;
            lastDraw = now;
            process.stderr.write(`\r${done}/${total} samples${done === total ? "\n" : ""}`);
          },
        });
        if (outcome.status === "aborted") {
          process.stderr.write(`stopped after ${outcome.done}/${outcome.total} samples; run the same command again to resume\n`);
          process.exitCode = 130;
          return;
        }
        if (o.json) process.stdout.write(`${JSON.stringify(outcome.report, null, 2)}\n`);
        else printReport(outcome.report, out);
      } catch (e) {
        const issues = (e as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
        if (Array.isArray(issues)) {
          process.stderr.write(`error: invalid options: ${issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}\n`);
        } else process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 1;
      } finally {
        process.removeListener("SIGINT", onSigint);
      }
    });

  evalCmd
    .command("compare")
    .description("Compare two eval runs (folders with report.json and samples.jsonl): differences with paired bootstrap intervals.")
    .argument("<a>", "baseline run folder")
    .argument("<b>", "candidate run folder")
    .option("--bootstrap <n>", "paired bootstrap resamples", nonNegativeInt, 1000)
    .option("--judge-endpoint <url>", "also judge each shared sample's two predictions pairwise with this OpenAI-compatible endpoint")
    .option("--judge-model <name>", "model for --judge-endpoint")
    .option("--judge-api-key-env <name>", "environment variable holding the judge's API key")
    .option("--judge-criteria <text>", "what the pairwise judge weighs")
    .option("--json", "print the comparison as JSON")
    .action(async (a: string, b: string, o: { bootstrap: number; json?: boolean; judgeEndpoint?: string; judgeModel?: string; judgeApiKeyEnv?: string; judgeCriteria?: string }) => {
      let judge: OpenAIClient | undefined;
      try {
        if (o.judgeEndpoint) {
          if (!o.judgeModel) throw new Error("--judge-endpoint needs --judge-model");
          const key = o.judgeApiKeyEnv ? process.env[o.judgeApiKeyEnv] : undefined;
          if (o.judgeApiKeyEnv && !key) throw new Error(`environment variable ${o.judgeApiKeyEnv} (--judge-api-key-env) is not set`);
          judge = new OpenAIClient({ baseUrl: o.judgeEndpoint, model: o.judgeModel, ...(key ? { apiKey: key } : {}) });
        }
        const cmp = await compareRuns(resolve(a), resolve(b), {
          samples: o.bootstrap,
          ...(judge ? { judge } : {}),
          ...(o.judgeCriteria ? { criteria: o.judgeCriteria } : {}),
        });
        if (o.json) {
          process.stdout.write(`${JSON.stringify(cmp, null, 2)}\n`);
          return;
        }
        const rows = Object.entries(cmp.metrics).map(([name, m]) => [
          name,
          fmt(m.a),
          fmt(m.b),
          `${m.delta >= 0 ? "+" : ""}${fmt(m.delta)}`,
          m.delta_ci ? `[${fmt(m.delta_ci.low)}, ${fmt(m.delta_ci.high)}]` : "",
          m.p_value !== undefined ? fmt(m.p_value, 3) : "",
        ]);
        const head = ["metric", "A", "B", "B-A", "95% CI", "p"];
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
        process.stdout.write(`${line(head)}\n${rows.map(line).join("\n")}\n\n${cmp.paired} paired samples\n`);
        if (cmp.pairwise) {
          const p = cmp.pairwise;
          process.stdout.write(`pairwise judge: B wins ${p.b_wins}, A wins ${p.a_wins}, ties ${p.ties}, parse failures ${p.parse_failures}; B win rate ${fmt(p.b_win_rate, 3)}\n`);
        }
      } catch (e) {
        process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 1;
      } finally {
        await judge?.close();
      }
    });
}
