import { createWriteStream } from "node:fs";
import { readFile, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { InvalidArgumentError, Option, type Command } from "commander";
import pc from "picocolors";
import {
  IGNORE_INDEX,
  jsonlLineBatches,
  loadTokenizer,
  packDataset,
  processBatch,
  readNpy,
  RecordFormatter,
  TokenizeError,
  type FormatOptions,
  type PackManifest,
} from "@nexa/data";

const int = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
  return n;
};

interface FormatFlags {
  tokenizer: string;
  lossOn: "assistant" | "all";
  chatTemplate?: string;
  textField: string;
  messagesField: string;
  eos: boolean;
  roles?: string;
}

function addFormatFlags(cmd: Command): Command {
  return cmd
    .requiredOption("--tokenizer <name|dir>", "cl100k_base, o200k_base, or a folder with a Hugging Face tokenizer.json")
    .addOption(new Option("--loss-on <what>", "loss on assistant turns only, or on every token").choices(["assistant", "all"]).default("assistant"))
    .option("--chat-template <file|chatml>", "Jinja chat template file, or chatml (default: the tokenizer's own)")
    .option("--text-field <name>", "field with plain text", "text")
    .option("--messages-field <name>", "field with chat turns [{role, content}]", "messages")
    .option("--roles <list>", "comma-separated roles a chat record may use (default: system,user,assistant,tool)")
    .option("--no-eos", "do not append EOS to plain-text documents");
}

async function formatOptions(f: FormatFlags): Promise<FormatOptions> {
  let chatTemplate = f.chatTemplate;
  if (chatTemplate && chatTemplate !== "chatml") {
    chatTemplate = await readFile(chatTemplate, "utf8").catch((err: unknown) => {
      throw new TokenizeError("template_failed", `cannot read --chat-template ${f.chatTemplate} (${(err as Error).message}). Fix: pass a Jinja file or chatml`);
    });
  }
  return {
    lossOn: f.lossOn,
    textField: f.textField,
    messagesField: f.messagesField,
    addEos: f.eos,
    ...(chatTemplate ? { chatTemplate } : {}),
    ...(f.roles ? { roles: f.roles.split(",").map((r) => r.trim()).filter(Boolean) } : {}),
  };
}

/** Prints an error the way every data command does, and sets the exit code. */
function fail(err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${pc.red("error")}: ${msg}\n`);
  process.exitCode = err instanceof TokenizeError && err.code !== "output_failed" ? 2 : 1;
}

function progressLine(): ((text: string) => void) & { done(): void } {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  const f = ((text: string) => {
    if (!tty) return;
    const now = Date.now();
    if (now - last < 100) return;
    last = now;
    process.stderr.write(`\r\x1b[2K${text}`);
  }) as ((text: string) => void) & { done(): void };
  f.done = () => {
    if (tty) process.stderr.write("\r\x1b[2K");
  };
  return f;
}

function summary(m: PackManifest, out: string): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  return [
    `${pc.green("packed")} ${m.documents} documents → ${m.sequences} sequences × ${m.seq_len} (${m.strategy}) in ${out}`,
    `  tokens ${m.tokens} (trained ${m.trained_tokens}), efficiency ${pct(m.efficiency)}, split ${m.documents_split}, dropped ${m.documents_dropped}`,
    `  tokenizer ${m.tokenizer.spec} ${m.tokenizer.hash.slice(0, 19)}…`,
  ].join("\n");
}

/** Registers `nexa data tokenize|pack|inspect` on the `data` command. */
export function registerPackCommands(data: Command): void {
  addFormatFlags(
    data
      .command("pack")
      .description("Tokenize, format and pack JSONL into fixed-length training sequences (input_ids/labels/position_ids .npy + manifest.json)")
      .argument("<inputs...>", "JSONL files with {text} or {messages} records"),
  )
    .requiredOption("--seq-len <n>", "tokens per sequence", int("--seq-len", 2))
    .requiredOption("--out <dir>", "output folder")
    .addOption(new Option("--strategy <s>", "packing strategy").choices(["bfd", "ffd", "greedy", "pad"]).default("bfd"))
    .addOption(new Option("--format <f>", "output format").choices(["npy", "parquet"]).default("npy"))
    .addOption(new Option("--overlong <what>", "documents longer than --seq-len").choices(["split", "drop"]).default("split"))
    .option("--buffer-size <n>", "documents held at once by bfd/ffd", int("--buffer-size", 1), 8192)
    .option("--seed <n>", "seed of the sequence order", int("--seed", 0), 0)
    .option("--threads <n>", "worker threads for tokenizing", int("--threads", 1), 1)
    .option("--json", "print the manifest as JSON on stdout")
    .action(async (inputs: string[], o: FormatFlags & { seqLen: number; out: string; strategy: "bfd" | "ffd" | "greedy" | "pad"; format: "npy" | "parquet"; overlong: "split" | "drop"; bufferSize: number; seed: number; threads: number; json?: boolean }) => {
      const progress = progressLine();
      try {
        const total = (await Promise.all(inputs.map((p) => stat(p).then((s) => s.size).catch(() => 0)))).reduce((a, b) => a + b, 0);
        const m = await packDataset(
          {
            inputs,
            out: o.out,
            tokenizer: o.tokenizer,
            seqLen: o.seqLen,
            strategy: o.strategy,
            overlong: o.overlong,
            bufferSize: o.bufferSize,
            seed: o.seed,
            threads: o.threads,
            outputFormat: o.format,
            format: await formatOptions(o),
          },
          {
            onProgress: (p) =>
              progress(`packing: ${total ? Math.min(100, (100 * p.bytesRead) / total).toFixed(1) : "?"}% read, ${p.documents} documents, ${p.sequences} sequences`),
          },
        );
        progress.done();
        if (o.json) process.stdout.write(JSON.stringify(m, null, 2) + "\n");
        else process.stdout.write(summary(m, o.out) + "\n");
      } catch (err) {
        progress.done();
        fail(err);
      }
    });

  addFormatFlags(
    data
      .command("tokenize")
      .description("Format and tokenize JSONL records; write {input_ids, labels} per record with --out, and print counts")
      .argument("<inputs...>", "JSONL files with {text} or {messages} records"),
  )
    .option("--out <file>", "JSONL output, one {input_ids, labels} per record")
    .option("--json", "print the summary as JSON")
    .action(async (inputs: string[], o: FormatFlags & { out?: string; json?: boolean }) => {
      const progress = progressLine();
      const tmp = o.out ? `${o.out}.tmp-${process.pid}` : undefined;
      const sink = tmp ? createWriteStream(tmp) : undefined;
      try {
        const tok = await loadTokenizer(o.tokenizer);
        const formatter = new RecordFormatter(tok, await formatOptions(o));
        let records = 0;
        let tokens = 0;
        let trained = 0;
        const started = performance.now();
        let seq = 0;
        for (const input of inputs) {
          for await (const { firstLine, lines } of jsonlLineBatches(input, 256, {})) {
            const b = processBatch(formatter, { seq: seq++, file: input, firstLine, lines });
            for (let i = 0; i + 1 < b.offsets.length; i++) {
              const ids = b.ids.subarray(b.offsets[i]!, b.offsets[i + 1]!);
              const labels = b.labels.subarray(b.offsets[i]!, b.offsets[i + 1]!);
              records++;
              tokens += ids.length;
              for (const l of labels) if (l !== IGNORE_INDEX) trained++;
              if (sink && !sink.write(`{"input_ids":[${ids.join(",")}],"labels":[${labels.join(",")}]}\n`)) {
                await new Promise<void>((r) => sink.once("drain", () => r()));
              }
            }
            progress(`tokenizing: ${records} records, ${tokens} tokens`);
          }
        }
        if (sink && tmp && o.out) {
          sink.end();
          await finished(sink);
          await rename(tmp, o.out);
        }
        progress.done();
        const seconds = (performance.now() - started) / 1000;
        const s = { records, tokens, trained_tokens: trained, tokenizer: o.tokenizer, tokenizer_hash: tok.hash, seconds, out: o.out ?? null };
        if (o.json) process.stdout.write(JSON.stringify(s) + "\n");
        else process.stdout.write(`${records} records, ${tokens} tokens (${trained} trained) in ${seconds.toFixed(2)} s${o.out ? ` → ${o.out}` : ""}\n`);
      } catch (err) {
        progress.done();
        sink?.destroy();
        if (tmp) await import("node:fs/promises").then((fs) => fs.rm(tmp, { force: true }));
        fail(err);
      }
    });

  data
    .command("inspect")
    .description("Decode packed sequences: document boundaries and the loss mask (trained tokens highlighted)")
    .argument("<dir>", "folder written by nexa data pack")
    .option("--index <n>", "first sequence to show", int("--index", 0), 0)
    .option("--count <n>", "sequences to show", int("--count", 1), 1)
    .option("--tokenizer <name|dir>", "tokenizer to decode with (default: the manifest's)")
    .option("--json", "print documents as JSON")
    .action(async (dir: string, o: { index: number; count: number; tokenizer?: string; json?: boolean }) => {
      try {
        const m = JSON.parse(
          await readFile(join(dir, "manifest.json"), "utf8").catch(() => {
            throw new TokenizeError("input_invalid", `${dir} has no manifest.json. Fix: point at a folder written by nexa data pack`);
          }),
        ) as PackManifest;
        if (m.output_format === "parquet") {
          throw new TokenizeError("input_invalid", `${dir} holds packed.parquet; inspect reads the npy format. Fix: re-pack with --format npy, or read the Parquet file with pyarrow`);
        }
        const tok = await loadTokenizer(o.tokenizer ?? m.tokenizer.spec);
        if (!o.tokenizer && tok.hash !== m.tokenizer.hash) {
          throw new TokenizeError("tokenizer_invalid", `tokenizer ${m.tokenizer.spec} changed since packing (hash differs). Fix: pass --tokenizer with the original files`);
        }
        const [ids, labels, cu, off] = await Promise.all(
          ["input_ids", "labels", "cu_seqlens", "cu_seqlens_offsets"].map((f) => readNpy(join(dir, `${f}.npy`))),
        );
        const n = ids!.shape[0]!;
        const len = ids!.shape[1]!;
        if (o.index >= n) throw new TokenizeError("input_invalid", `--index ${o.index} is past the last sequence (${n - 1}). Fix: pass --index below ${n}`);
        const color = process.stdout.isTTY === true && !o.json;
        const out: unknown[] = [];
        for (let i = o.index; i < Math.min(n, o.index + o.count); i++) {
          const row = (a: typeof ids) => a!.data.subarray(i * len, (i + 1) * len) as Int32Array;
          const rIds = row(ids);
          const rLab = row(labels);
          const bounds = Array.from(cu!.data.subarray(Number(off!.data[i]), Number(off!.data[i + 1])), Number);
          const docs = [];
          for (let k = 0; k + 1 < bounds.length; k++) {
            const [a, b] = [bounds[k]!, bounds[k + 1]!];
            // Group runs of equal mask so each run decodes as text.
            const runs: { trained: boolean; text: string }[] = [];
            let s = a;
            for (let t = a + 1; t <= b; t++) {
              if (t === b || (rLab[t] !== IGNORE_INDEX) !== (rLab[s] !== IGNORE_INDEX)) {
                runs.push({ trained: rLab[s] !== IGNORE_INDEX, text: tok.decode(rIds.subarray(s, t)) });
                s = t;
              }
            }
            docs.push({ start: a, end: b, tokens: b - a, trained: Array.from(rLab.subarray(a, b)).filter((l) => l !== IGNORE_INDEX).length, runs });
          }
          const padding = len - (bounds[bounds.length - 1] ?? 0);
          if (o.json) {
            out.push({ index: i, documents: docs, padding });
            continue;
          }
          process.stdout.write(`${pc.bold(`sequence ${i}`)}: ${docs.length} documents, ${padding} padding\n`);
          docs.forEach((d, k) => {
            process.stdout.write(`${pc.cyan(`── document ${k}`)} [${d.start}, ${d.end}) ${d.tokens} tokens, ${d.trained} trained\n`);
            process.stdout.write(
              d.runs.map((r) => (color ? (r.trained ? pc.green(r.text) : pc.dim(r.text)) : r.trained ? r.text : `⟦${r.text}⟧`)).join("") + "\n",
            );
          });
          if (!color) process.stdout.write("(⟦…⟧: no loss)\n");
        }
        if (o.json) process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      } catch (err) {
        fail(err);
      }
    });
}
