import { rm, writeFile, rename, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { SpillingMinHashIndex } from "../dedup/spilling-minhash-index.js";
import { RecordError } from "../io/record-error.js";
import { readRecords } from "../io/record-reader.js";
import { RecordWriter } from "../io/record-writer.js";
import { pyLen } from "../text/py-str.js";
import type { DocOutcome } from "./batch-processor.js";
import { buildSteps, segments } from "./built-steps.js";
import { type DocExecutor, inlineExecutor, poolExecutor, workerScript } from "./doc-executor.js";
import { addLength, type AuditReport, type StepReport } from "./audit-report.js";
import { PipelineConfig, resolveSteps } from "./pipeline-config.js";

/** Progress of a run, for bars and logs. */
export interface AuditProgress {
  pass: number;
  passes: number;
  docs: number;
  /** Input bytes consumed (pass 1 only; 0 for Parquet). */
  bytes: number;
}

/** Options of {@link runAudit}. */
export interface AuditOptions {
  /** JSONL, gzip JSONL or Parquet file. */
  input: string;
  /** Folder for `kept.jsonl`, `removed.jsonl`, `report.json`. */
  outDir: string;
  config?: PipelineConfig;
  /** Stops the run promptly; partial outputs are removed. */
  signal?: AbortSignal;
  onProgress?: (p: AuditProgress) => void;
  log?: (line: string) => void;
  /** Output file names. @default kept.jsonl / removed.jsonl / report.json */
  files?: { kept?: string; removed?: string; report?: string };
}

interface Doc {
  record: Record<string, unknown>;
  text: string;
  /** UTF-8 bytes of `text`. */
  bytes: number;
  id: string;
  line: number;
}

// Batches of at most 64 documents or 256 Ki characters: small enough that the main thread, which
// runs a batch itself whenever the workers' queues are full, is never long away from feeding them.
const BATCH_DOCS = 64;
const BATCH_CHARS = 1 << 18;
/** Batches in flight per thread: results are handled in input order, so the window is what lets the main thread run ahead of a slow worker batch instead of waiting on it. */
const INFLIGHT_PER_THREAD = 8;

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/**
 * Stream a dataset through the pipeline and write `kept.jsonl`, `removed.jsonl` (each removed
 * record gains `filter` and `reason`) and `report.json`. Per-document steps run on
 * `config.threads` threads (this one and `threads - 1` workers); decisions and output order do not
 * depend on the thread count.
 * A MinHash step splits the run in two passes: survivors are spooled to a temporary file, their
 * ids to another, and their signatures go to a {@link SpillingMinHashIndex} that spills sorted
 * band runs to disk past `memory_mb`, so memory stays bounded whatever the corpus size.
 */
export async function runAudit(options: AuditOptions): Promise<AuditReport> {
  const started = performance.now();
  const config = PipelineConfig.parse(options.config ?? {});
  const resolved = resolveSteps(config);
  const built = await buildSteps(resolved);
  const segs = segments(built);
  const log = options.log ?? (() => {});
  const signal = options.signal;
  await mkdir(options.outDir, { recursive: true });
  const keptPath = join(options.outDir, options.files?.kept ?? "kept.jsonl");
  const removedPath = join(options.outDir, options.files?.removed ?? "removed.jsonl");
  const reportPath = join(options.outDir, options.files?.report ?? "report.json");
  const kept = await RecordWriter.open(keptPath);
  const removed = await RecordWriter.open(removedPath);
  const spools: string[] = [];
  const spoolWriters: RecordWriter[] = [];
  const indexes: SpillingMinHashIndex[] = [];
  const executors: DocExecutor[] = [];
  const stats: StepReport[] = built.map((s, i) => ({ name: s.name, type: resolved[i]!.type, docs_in: 0, docs_out: 0, bytes_in: 0, bytes_out: 0, edited: 0, drops: {}, counts: {}, time_ms: 0, mb_per_s: 0 }));
  const stepIndex = new Map(built.map((s, i) => [s, i]));
  const report: AuditReport = {
    input: options.input,
    steps: stats,
    docs_in: 0,
    bytes_in: 0,
    kept: 0,
    kept_bytes: 0,
    removed: 0,
    skipped: {},
    skipped_examples: [],
    length_histogram: { input: {}, kept: {} },
    wall_ms: 0,
    mb_per_s: 0,
    threads: config.threads,
  };
  const script = config.threads > 1 ? workerScript() : null;
  if (config.threads > 1 && script === null) log(`audit: worker script not built (run the package build); running on 1 thread`);

  const checkAbort = (): void => {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error(`audit aborted: ${String(signal.reason)}`);
  };

  try {
    let source: AsyncIterable<Doc> = inputDocs(options.input, config, report, (p) => options.onProgress?.({ ...p, pass: 1, passes: segs.length }));
    for (let si = 0; si < segs.length; si++) {
      const seg = segs[si]!;
      const segStats = seg.steps.map((s) => stats[stepIndex.get(s)!]!);
      const local = inlineExecutor(seg.steps, seg.global);
      const exec = script !== null && seg.steps.some((s) => s.kind === "doc") ? poolExecutor(config.threads, resolved, si, script, local) : local;
      executors.push(exec);
      const spoolPath = seg.global ? join(options.outDir, `.audit-spool-${si}-${process.pid}.jsonl`) : null;
      const spool = spoolPath ? await RecordWriter.open(spoolPath) : null;
      if (spoolPath) spools.push(spoolPath);
      if (spool) spoolWriters.push(spool);
      const idsPath = seg.global ? join(options.outDir, `.audit-ids-${si}-${process.pid}.jsonl`) : null;
      const idsWriter = idsPath ? await RecordWriter.open(idsPath) : null;
      if (idsPath) spools.push(idsPath);
      if (idsWriter) spoolWriters.push(idsWriter);
      const mh = seg.global?.hasher.options;
      const index = mh ? new SpillingMinHashIndex(mh.num_buckets, mh.hashes_per_bucket, { dir: join(options.outDir, `.audit-minhash-${si}-${process.pid}`), memoryBytes: mh.memory_mb * 2 ** 20 }) : null;
      if (index) indexes.push(index);
      const globalStats = seg.global ? stats[stepIndex.get(seg.global)!]! : null;
      let spooled = 0;

      const handle = async (doc: Doc, out: DocOutcome): Promise<void> => {
        let t = doc.text;
        let bytes = doc.bytes;
        for (let i = 0; i < seg.steps.length; i++) {
          const s = seg.steps[i]!;
          const st = segStats[i]!;
          st.docs_in++;
          st.bytes_in += bytes;
          let verdict: { drop?: string; text?: string } | null | undefined;
          if (i >= out.inlineFrom) {
            const t0 = performance.now();
            const v = s.kind === "doc" ? s.apply(t, st.counts) : s.apply(t, doc.record);
            st.time_ms += performance.now() - t0;
            verdict = v.keep ? (v.text !== undefined ? { text: v.text } : null) : { drop: v.reason };
          } else if (s.kind === "ordered") {
            const t0 = performance.now();
            const v = s.apply(out.verdicts[i]!.text!, doc.record);
            st.time_ms += performance.now() - t0;
            verdict = v.keep ? null : { drop: v.reason };
          } else {
            verdict = out.verdicts[i];
            st.time_ms += out.ns[i]! / 1e6;
            for (const [k, v] of Object.entries(out.counts[i]!)) st.counts[k] = (st.counts[k] ?? 0) + v;
          }
          if (verdict?.drop !== undefined) {
            st.drops[verdict.drop] = (st.drops[verdict.drop] ?? 0) + 1;
            report.removed++;
            await removed.write({ ...doc.record, filter: s.name, reason: verdict.drop });
            return;
          }
          if (verdict?.text !== undefined && verdict.text !== t) {
            t = verdict.text;
            bytes = utf8Bytes(t);
            st.edited++;
          }
          st.docs_out++;
          st.bytes_out += bytes;
        }
        const record = t === doc.text ? doc.record : { ...doc.record, [config.text_field]: t };
        if (seg.global && spool && idsWriter && index && globalStats) {
          let sig: Uint32Array | null;
          if (out.inlineFrom === seg.steps.length && out.signature !== undefined && t === (out.text ?? doc.text)) {
            sig = out.signature;
            globalStats.time_ms += out.signatureNs / 1e6;
          } else {
            const t0 = performance.now();
            sig = seg.global.hasher.signature(t);
            globalStats.time_ms += performance.now() - t0;
          }
          const ordinal = spooled++;
          if (sig) index.add(ordinal, sig);
          await spool.write(record);
          await idsWriter.write({ id: doc.id });
        } else {
          report.kept++;
          report.kept_bytes += bytes;
          addLength(report.length_histogram.kept, pyLen(t));
          await kept.write(record);
        }
      };

      // Bounded pipeline: at most INFLIGHT_PER_THREAD batches per thread in flight, handled strictly in order.
      const inflight: { docs: Doc[]; result: Promise<DocOutcome[]> }[] = [];
      const maxInflight = INFLIGHT_PER_THREAD * Math.max(1, config.threads);
      let batch: Doc[] = [];
      let batchChars = 0;
      const drain = async (keep: number): Promise<void> => {
        while (inflight.length > keep) {
          const head = inflight.shift()!;
          const outs = await head.result;
          checkAbort();
          for (let k = 0; k < head.docs.length; k++) await handle(head.docs[k]!, outs[k]!);
        }
      };
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        inflight.push({ docs: batch, result: exec.submit(batch.map((d) => d.text)) });
        batch = [];
        batchChars = 0;
        await drain(maxInflight - 1);
      };
      for await (const doc of source) {
        checkAbort();
        batch.push(doc);
        batchChars += doc.text.length;
        if (batch.length >= BATCH_DOCS || batchChars >= BATCH_CHARS) await flush();
      }
      await flush();
      await drain(0);
      await exec.close();

      if (seg.global && spool && idsWriter && index && globalStats) {
        await spool.close();
        await idsWriter.close();
        const t0 = performance.now();
        const { removedBy, clusters } = index.clusters();
        const spilledRuns = index.runs.length;
        index.dispose();
        const keptIds = await idsOf(idsPath!, new Set(removedBy.values()));
        const gst = globalStats;
        gst.time_ms += performance.now() - t0;
        gst.counts.clusters = clusters.length;
        gst.counts.signatures = index.size;
        gst.counts.spilled_runs = spilledRuns;
        log(`${seg.global.name}: ${index.size} signatures, ${clusters.length} clusters, ${removedBy.size} near-duplicates`);
        source = spooledDocs(spoolPath!, idsPath!, config, gst, removedBy, keptIds, async (rec, keptId) => {
          report.removed++;
          await removed.write({ ...rec, filter: seg.global!.name, reason: "minhash_duplicate", duplicate_of: keptId });
        }, (p) => options.onProgress?.({ ...p, pass: si + 2, passes: segs.length }));
      }
    }
    await kept.close();
    await removed.close();
    for (const s of spools) await rm(s, { force: true });
    report.wall_ms = performance.now() - started;
    report.mb_per_s = report.bytes_in / 1e6 / (report.wall_ms / 1000);
    for (const s of stats) s.mb_per_s = s.time_ms > 0 ? s.bytes_in / 1e6 / (s.time_ms / 1000) : 0;
    const tmp = `${reportPath}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(report, null, 2) + "\n");
    await rename(tmp, reportPath);
    return report;
  } catch (e) {
    await Promise.all(executors.map((x) => x.close().catch(() => {})));
    await kept.abort();
    await removed.abort();
    for (const w of spoolWriters) await w.abort();
    for (const s of spools) await rm(s, { force: true });
    for (const x of indexes) x.dispose();
    throw e;
  }
}

async function* inputDocs(
  input: string,
  config: ReturnType<typeof PipelineConfig.parse>,
  report: AuditReport,
  progress: (p: { docs: number; bytes: number }) => void,
): AsyncGenerator<Doc> {
  let bytes = 0;
  const skip = (e: RecordError): void => {
    if (config.on_error === "fail") throw e;
    report.skipped[e.kind] = (report.skipped[e.kind] ?? 0) + 1;
    if (report.skipped_examples.length < 10) report.skipped_examples.push(e.message);
  };
  for await (const item of readRecords(input)) {
    if (!item.ok) {
      skip(item.error);
      continue;
    }
    const { record, line } = item.value;
    bytes += item.value.bytes;
    const text = record[config.text_field];
    if (typeof text !== "string") {
      skip(
        new RecordError(
          text === undefined ? "missing_field" : "not_a_string",
          { file: input, line, field: config.text_field },
          text === undefined ? "the text field is missing" : `the text field is ${text === null ? "null" : typeof text}, not a string`,
          `Set --text-field to the field holding the text, or fix the record (or pass --on-error skip).`,
        ),
      );
      continue;
    }
    const idv = record[config.id_field];
    const id = typeof idv === "string" || typeof idv === "number" ? String(idv) : `line:${line}`;
    const b = utf8Bytes(text);
    report.docs_in++;
    report.bytes_in += b;
    addLength(report.length_histogram.input, pyLen(text));
    if (report.docs_in % 1000 === 0) progress({ docs: report.docs_in, bytes });
    yield { record, text, bytes: b, id, line };
  }
  progress({ docs: report.docs_in, bytes });
}

/** The ids (written one `{id}` record per spooled document) of the ordinals in `wanted`. */
async function idsOf(path: string, wanted: Set<number>): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (wanted.size === 0) return out;
  let ordinal = -1;
  for await (const item of readRecords(path, "jsonl")) {
    if (!item.ok) throw item.error;
    if (wanted.has(++ordinal)) out.set(ordinal, item.value.record.id as string);
  }
  return out;
}

async function* spooledDocs(
  path: string,
  idsPath: string,
  config: ReturnType<typeof PipelineConfig.parse>,
  gst: StepReport,
  removedBy: Map<number, number>,
  keptIds: Map<number, string>,
  onRemoved: (record: Record<string, unknown>, keptId: string) => Promise<void>,
  progress: (p: { docs: number; bytes: number }) => void,
): AsyncGenerator<Doc> {
  let ordinal = -1;
  const ids = readRecords(idsPath, "jsonl");
  try {
    for await (const item of readRecords(path, "jsonl")) {
      if (!item.ok) throw item.error;
      ordinal++;
      const idItem = await ids.next();
      if (idItem.done === true || !idItem.value.ok) throw new Error(`audit: spool ${idsPath} ends before ${path} (record ${ordinal + 1})`);
      const record = item.value.record;
      const text = record[config.text_field] as string;
      const b = utf8Bytes(text);
      gst.docs_in++;
      gst.bytes_in += b;
      const keptBy = removedBy.get(ordinal);
      if (keptBy !== undefined) {
        gst.drops.minhash_duplicate = (gst.drops.minhash_duplicate ?? 0) + 1;
        await onRemoved(record, keptIds.get(keptBy)!);
        continue;
      }
      gst.docs_out++;
      gst.bytes_out += b;
      if (ordinal % 1000 === 0) progress({ docs: ordinal, bytes: 0 });
      yield { record, text, bytes: b, id: idItem.value.value.record.id as string, line: item.value.line };
    }
  } finally {
    // Read in step, never to its end: closing it releases the spool's file.
    await ids.return(undefined);
  }
}
