import { randomBytes } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { z } from "zod";
import { jsonlLineBatches, type SourceDigest } from "./jsonl-lines.js";
import { loadTokenizer } from "./load-tokenizer.js";
import { NpyWriter } from "./npy-file.js";
import { ParquetSink } from "./parquet-sink.js";
import { processBatch, type LineBatch, type TokenizedBatch } from "./record-batch.js";
import { FormatOptions, RecordFormatter } from "./record-formatter.js";
import { PackStrategy, SequencePacker, type PackedSequence } from "./sequence-packer.js";
import { TokenizePool } from "./tokenize-pool.js";
import { TokenizeError } from "./tokenize-error.js";

/** Options of {@link packDataset}: inputs, tokenizer, formatting and packing. */
export const PackDatasetOptions = z.strictObject({
  /** JSONL files, read in order. */
  inputs: z.array(z.string().min(1)).min(1),
  /** Output folder (created; files in it are replaced only once complete). */
  out: z.string().min(1),
  /** `cl100k_base`, `o200k_base` or a folder with `tokenizer.json`. */
  tokenizer: z.string().min(1),
  seqLen: z.number().int().min(2).max(1_048_576),
  /** @default "bfd" */
  strategy: PackStrategy.default("bfd"),
  /** @default "split" */
  overlong: z.enum(["split", "drop"]).default("split"),
  /** @default 8192 */
  bufferSize: z.number().int().min(1).default(8192),
  /** @default 0 */
  seed: z.number().int().default(0),
  /** `npy`: one memory-mappable array per field; `parquet`: `packed.parquet`, a row per sequence. @default "npy" */
  outputFormat: z.enum(["npy", "parquet"]).default("npy"),
  /** Worker threads for formatting and tokenizing; 1 runs in-process. @default 1 */
  threads: z.number().int().min(1).max(256).default(1),
  /** Lines per batch handed to a thread. @default 256 */
  batchLines: z.number().int().min(1).default(256),
  /** How records become tokens (fields, chat template, loss mask, EOS). */
  format: FormatOptions.prefault({}),
});
export type PackDatasetOptions = z.input<typeof PackDatasetOptions>;

/** `manifest.json` of a packed folder. */
export interface PackManifest {
  format: "nexa.packed/v1";
  /** Real tokens / token slots. */
  efficiency: number;
  sequences: number;
  /** Real (non-padding) tokens. */
  tokens: number;
  /** Tokens with a label (the loss applies). */
  trained_tokens: number;
  token_slots: number;
  documents: number;
  documents_split: number;
  documents_dropped: number;
  strategy: z.infer<typeof PackStrategy>;
  output_format: "npy" | "parquet";
  seq_len: number;
  seed: number;
  buffer_size: number;
  overlong: "split" | "drop";
  loss_on: "assistant" | "all";
  tokenizer: { spec: string; kind: string; hash: string; vocab_size: number; eos_id: number | null; bos_id: number | null; pad_id: number };
  sources: SourceDigest[];
  files: Record<string, { shape: number[]; dtype: string }>;
  /** How to read the arrays. */
  conventions: { labels: string; position_ids: string; cu_seqlens: string; pad: string };
  created_at: string;
}

/** Progress of {@link packDataset}, for a progress line. */
export interface PackProgress {
  bytesRead: number;
  bytesTotal: number;
  documents: number;
  sequences: number;
}

/** Outputs of a packed folder in `npy` format, as the trainer reads them. */
export const PACKED_FILES = ["input_ids.npy", "labels.npy", "position_ids.npy", "cu_seqlens.npy", "cu_seqlens_offsets.npy"] as const;

/** Where packed sequences go: the npy arrays, or one Parquet file. */
interface Sink {
  write(seqs: PackedSequence[]): Promise<void>;
  close(): Promise<PackManifest["files"]>;
  abort(): Promise<void>;
}

async function npySink(out: string, seqLen: number): Promise<Sink> {
  const writers = {
    input_ids: await NpyWriter.create(join(out, "input_ids.npy"), "<i4", seqLen),
    labels: await NpyWriter.create(join(out, "labels.npy"), "<i4", seqLen),
    position_ids: await NpyWriter.create(join(out, "position_ids.npy"), "<i4", seqLen),
    cu_seqlens: await NpyWriter.create(join(out, "cu_seqlens.npy"), "<i4"),
    cu_seqlens_offsets: await NpyWriter.create(join(out, "cu_seqlens_offsets.npy"), "<i8"),
  };
  let cuTotal = 0n;
  await writers.cu_seqlens_offsets.append(BigInt64Array.of(0n));
  return {
    async write(seqs) {
      for (const s of seqs) {
        await writers.input_ids.append(s.inputIds);
        await writers.labels.append(s.labels);
        await writers.position_ids.append(s.positionIds);
        await writers.cu_seqlens.append(s.cuSeqlens);
        cuTotal += BigInt(s.cuSeqlens.length);
        await writers.cu_seqlens_offsets.append(BigInt64Array.of(cuTotal));
      }
    },
    async close() {
      const files: PackManifest["files"] = {};
      for (const w of Object.values(writers)) {
        const r = await w.close();
        files[basename(r.path)] = { shape: r.shape, dtype: r.dtype === "<i4" ? "int32" : "int64" };
      }
      return files;
    },
    async abort() {
      await Promise.all(Object.values(writers).map((w) => w.abort()));
    },
  };
}

function parquetSink(out: string, seqLen: number): Sink {
  const sink = ParquetSink.create(join(out, "packed.parquet"));
  return {
    async write(seqs) {
      for (const s of seqs) await sink.append(s);
    },
    async close() {
      await sink.close();
      return { "packed.parquet": { shape: [sink.rows, seqLen], dtype: "list<int32> columns input_ids, labels, position_ids, cu_seqlens" } };
    },
    abort: () => sink.abort(),
  };
}

/**
 * Reads JSONL records, formats and tokenizes them (on worker threads when `threads > 1`), packs them and
 * writes `input_ids.npy`, `labels.npy`, `position_ids.npy` (int32 `[sequences, seq_len]`), `cu_seqlens.npy`
 * (int32, all sequences' boundaries concatenated) with `cu_seqlens_offsets.npy` (int64 `[sequences + 1]`:
 * sequence i's boundaries are `cu_seqlens[offsets[i]:offsets[i+1]]`) and `manifest.json`, written last.
 * With `outputFormat: "parquet"` the sequences go to `packed.parquet` instead (a row per sequence).
 *
 * @example
 * const manifest = await packDataset({ inputs: ["sft.jsonl"], out: "packed", tokenizer: "./qwen", seqLen: 4096 });
 * manifest.efficiency; // 0.995
 */
export async function packDataset(
  options: PackDatasetOptions,
  hooks: { onProgress?: (p: PackProgress) => void } = {},
): Promise<PackManifest> {
  const o = PackDatasetOptions.parse(options);
  const tokenizer = await loadTokenizer(o.tokenizer);
  const formatter = new RecordFormatter(tokenizer, o.format);
  const packer = new SequencePacker({ seqLen: o.seqLen, strategy: o.strategy, overlong: o.overlong, bufferSize: o.bufferSize, seed: o.seed, padId: tokenizer.padId });
  await mkdir(o.out, { recursive: true });
  const sink = o.outputFormat === "parquet" ? parquetSink(o.out, o.seqLen) : await npySink(o.out, o.seqLen);
  const write = (seqs: PackedSequence[]) => sink.write(seqs);
  const pool = o.threads > 1 ? new TokenizePool(o.threads, { tokenizer: o.tokenizer, format: o.format, seqLen: o.seqLen }) : undefined;
  const sources: SourceDigest[] = [];
  const progress: PackProgress = { bytesRead: 0, bytesTotal: 0, documents: 0, sequences: 0 };
  const consume = async (b: TokenizedBatch) => {
    for (let i = 0; i + 1 < b.offsets.length; i++) {
      const s = b.offsets[i]!;
      const e = b.offsets[i + 1]!;
      await write(packer.push({ ids: b.ids.subarray(s, e), labels: b.labels.subarray(s, e) }));
    }
    progress.documents = packer.stats.documents;
    progress.sequences = packer.stats.sequences;
    hooks.onProgress?.(progress);
  };
  try {
    let seq = 0;
    let next = 0;
    for (const input of o.inputs) {
      const digest: Partial<SourceDigest> = {};
      for await (const { firstLine, lines } of jsonlLineBatches(input, o.batchLines, digest)) {
        const batch: LineBatch = { seq: seq++, file: input, firstLine, lines };
        if (!pool) {
          await consume(processBatch(formatter, batch, o.seqLen));
        } else {
          pool.submit(batch);
          // Bounded read-ahead: at most 2 batches per thread are held.
          while (pool.pending >= 2 * o.threads) await consume(await pool.take(next++));
        }
        for (const l of lines) progress.bytesRead += l.length + 1;
      }
      sources.push(digest as SourceDigest);
    }
    if (pool) while (next < seq) await consume(await pool.take(next++));
    await write(packer.finish());
    if (packer.stats.sequences === 0) {
      throw new TokenizeError("input_invalid", `no documents to pack in ${o.inputs.join(", ")}. Fix: check the input files and --text-field / --messages-field`);
    }
    const files = await sink.close();
    const st = packer.stats;
    const manifest: PackManifest = {
      format: "nexa.packed/v1",
      efficiency: packer.efficiency,
      sequences: st.sequences,
      tokens: st.tokens,
      trained_tokens: st.trainedTokens,
      token_slots: st.sequences * o.seqLen,
      documents: st.documents,
      documents_split: st.split,
      documents_dropped: st.dropped,
      strategy: o.strategy,
      output_format: o.outputFormat,
      seq_len: o.seqLen,
      seed: o.seed,
      buffer_size: o.bufferSize,
      overlong: o.overlong,
      loss_on: formatter.options.lossOn,
      tokenizer: {
        spec: o.tokenizer,
        kind: tokenizer.kind,
        hash: tokenizer.hash,
        vocab_size: tokenizer.vocabSize,
        eos_id: tokenizer.eosId ?? null,
        bos_id: tokenizer.bosId ?? null,
        pad_id: tokenizer.padId,
      },
      sources,
      files,
      conventions: {
        labels: "unshifted (the model shifts them); -100 on padding, masked tokens and the first token of every document",
        position_ids: "restart at 0 at every document and at the padding",
        cu_seqlens: "document boundaries per sequence, [0, ..., real_tokens]; sequence i is cu_seqlens[offsets[i]:offsets[i+1]]",
        pad: "after the last boundary; input_ids = tokenizer.pad_id",
      },
      created_at: new Date().toISOString(),
    };
    const tmp = join(o.out, `.manifest.json.tmp-${randomBytes(4).toString("hex")}`);
    await writeFile(tmp, JSON.stringify(manifest, null, 2) + "\n");
    await rename(tmp, join(o.out, "manifest.json"));
    return manifest;
  } catch (err) {
    await sink.abort();
    throw err;
  } finally {
    await pool?.close();
  }
}
