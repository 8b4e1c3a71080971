import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readRecords } from "../io/record-reader.js";
import { RecordWriter } from "../io/record-writer.js";
import type { RecordError } from "../io/record-error.js";
import { SeededRandom, stableFraction } from "./seeded.js";

/** Options shared by the dataset operations. */
export interface OpOptions {
  /** Field holding the record id (split and shard key). @default "id" */
  idField?: string;
  /** `fail` stops at the first bad record; `skip` counts and continues. @default "fail" */
  onError?: "fail" | "skip";
}

/** What an operation did. */
export interface OpResult {
  records: number;
  skipped: number;
  outputs: Record<string, number>;
}

async function* records(input: string, onError: "fail" | "skip", counter: { skipped: number }): AsyncGenerator<Record<string, unknown>> {
  for await (const item of readRecords(input)) {
    if (item.ok) yield item.value.record;
    else if (onError === "skip") counter.skipped++;
    else throw item.error as RecordError;
  }
}

function keyOf(record: Record<string, unknown>, idField: string, line: number): string {
  const v = record[idField];
  return typeof v === "string" || typeof v === "number" ? String(v) : `#${line}`;
}

/**
 * Seeded shuffle of a file of any size: records are dealt into temporary buckets (each small
 * enough to hold in memory) by a seeded PRNG, then each bucket is shuffled and written in turn.
 * The same seed and input give the same output.
 */
export async function shuffleDataset(input: string, output: string, seed: number, options: OpOptions & { bucketBytes?: number } = {}): Promise<OpResult> {
  const onError = options.onError ?? "fail";
  const size = (await stat(input)).size;
  // gzip inflates about 4x; aim for buckets of ~bucketBytes of JSON.
  const nBuckets = Math.max(1, Math.ceil((size * (/\.gz$/.test(input) ? 4 : 1)) / (options.bucketBytes ?? 128 * 2 ** 20)));
  const dir = await mkdtemp(join(tmpdir(), "nexa-shuffle-"));
  const counter = { skipped: 0 };
  let n = 0;
  try {
    const rng = new SeededRandom(seed);
    const buckets = await Promise.all(Array.from({ length: nBuckets }, (_, i) => RecordWriter.open(join(dir, `b${i}.jsonl`))));
    for await (const r of records(input, onError, counter)) {
      await buckets[nBuckets === 1 ? 0 : rng.int(nBuckets)]!.write(r);
      n++;
    }
    for (const b of buckets) await b.close();
    const out = await RecordWriter.open(output);
    try {
      for (let i = 0; i < nBuckets; i++) {
        const lines = (await readFile(join(dir, `b${i}.jsonl`), "utf8")).split("\n").filter(Boolean);
        rng.shuffle(lines);
        for (const l of lines) await out.write(JSON.parse(l) as Record<string, unknown>);
      }
      await out.close();
    } catch (e) {
      await out.abort();
      throw e;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { records: n, skipped: counter.skipped, outputs: { [output]: n } };
}

/**
 * Split by ratios, stable under re-runs and reordering: a record goes to the split where the
 * seeded hash of its id falls. `ratios` are normalised (e.g. `{train: 0.9, val: 0.05, test: 0.05}`).
 */
export async function splitDataset(input: string, outDir: string, ratios: Record<string, number>, seed: number, options: OpOptions = {}): Promise<OpResult> {
  const names = Object.keys(ratios);
  const total = names.reduce((s, k) => s + ratios[k]!, 0);
  if (names.length === 0 || !(total > 0) || names.some((k) => !(ratios[k]! >= 0))) throw new Error(`split ratios must be non-negative and sum to more than 0, got ${JSON.stringify(ratios)}`);
  const cum: number[] = [];
  let acc = 0;
  for (const k of names) cum.push((acc += ratios[k]! / total));
  const writers = await Promise.all(names.map((k) => RecordWriter.open(join(outDir, `${k}.jsonl`))));
  const counter = { skipped: 0 };
  let n = 0;
  try {
    for await (const r of records(input, options.onError ?? "fail", counter)) {
      n++;
      const u = stableFraction(seed, keyOf(r, options.idField ?? "id", n));
      let i = cum.findIndex((c) => u < c);
      if (i < 0) i = names.length - 1;
      await writers[i]!.write(r);
    }
    for (const w of writers) await w.close();
  } catch (e) {
    for (const w of writers) await w.abort();
    throw e;
  }
  return { records: n, skipped: counter.skipped, outputs: Object.fromEntries(names.map((k, i) => [`${k}.jsonl`, writers[i]!.count])) };
}

/** N stable shards by the hash of the id: `shard-00000-of-0000N.jsonl`, … */
export async function shardDataset(input: string, outDir: string, shards: number, options: OpOptions & { seed?: number } = {}): Promise<OpResult> {
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`--shards must be a positive integer, got ${shards}`);
  const name = (i: number): string => `shard-${String(i).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.jsonl`;
  const writers = await Promise.all(Array.from({ length: shards }, (_, i) => RecordWriter.open(join(outDir, name(i)))));
  const counter = { skipped: 0 };
  let n = 0;
  try {
    for await (const r of records(input, options.onError ?? "fail", counter)) {
      n++;
      const u = stableFraction(options.seed ?? 0, keyOf(r, options.idField ?? "id", n));
      await writers[Math.min(shards - 1, Math.floor(u * shards))]!.write(r);
    }
    for (const w of writers) await w.close();
  } catch (e) {
    for (const w of writers) await w.abort();
    throw e;
  }
  return { records: n, skipped: counter.skipped, outputs: Object.fromEntries(writers.map((w, i) => [name(i), w.count])) };
}
