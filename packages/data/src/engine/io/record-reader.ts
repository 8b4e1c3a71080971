import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead } from "hyparquet";
import { RecordError } from "./record-error.js";

/** One raw record read from a dataset file. */
export interface RawRecord {
  /** The parsed JSON object (or Parquet row). */
  record: Record<string, unknown>;
  /** 1-based line (JSONL) or row (Parquet) number. */
  line: number;
  /** Bytes of the line (JSONL) — for progress. */
  bytes: number;
}

/** What a reader yields: a record or, with `onError: "skip"`, the error that replaced it. */
export type ReadItem = { ok: true; value: RawRecord } | { ok: false; error: RecordError };

/** The formats the engine reads and writes. */
export type DataFormat = "jsonl" | "jsonl.gz" | "parquet";

/** Guess the format from the name, then from the first bytes (gzip `1f 8b`, Parquet `PAR1`). */
export async function detectFormat(path: string): Promise<DataFormat> {
  if (/\.parquet$/i.test(path)) return "parquet";
  if (/\.gz$/i.test(path)) return "jsonl.gz";
  if (/\.jsonl?$/i.test(path)) return "jsonl";
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, 0);
    if (buf[0] === 0x1f && buf[1] === 0x8b) return "jsonl.gz";
    if (buf.toString("latin1") === "PAR1") return "parquet";
    return "jsonl";
  } finally {
    await fh.close();
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Stream the records of a JSONL (plain or gzip) or Parquet file with bounded memory: JSONL line by
 * line, Parquet one row group at a time. Errors (bad JSON, invalid UTF-8, truncated input) are
 * yielded as items, so the caller decides whether to fail or skip; a truncated gzip or Parquet
 * file ends the stream after its error.
 */
export async function* readRecords(path: string, format?: DataFormat): AsyncGenerator<ReadItem> {
  const fmt = format ?? (await detectFormat(path));
  if (fmt === "parquet") yield* readParquet(path);
  else yield* readJsonl(path, fmt === "jsonl.gz");
}

const READ_CHUNK = 1 << 20;

/**
 * A plain file's bytes in chunks, read into two buffers in turn (the next read runs while the
 * caller works on the current chunk): a stream would allocate a fresh megabyte per chunk, and
 * fresh memory costs a page fault per 4 KiB. A chunk is valid until the caller asks for the next.
 */
async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path, "r");
  const bufs = [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)];
  let turn = 0;
  let next = fh.read(bufs[0]!, 0, READ_CHUNK, null);
  try {
    for (;;) {
      const { bytesRead } = await next;
      if (bytesRead === 0) return;
      const buf = bufs[turn]!;
      turn ^= 1;
      next = fh.read(bufs[turn]!, 0, READ_CHUNK, null);
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    // A caller that stops early leaves a read in flight: let it land before closing.
    await next.catch(() => undefined);
    await fh.close();
  }
}

async function* readJsonl(path: string, gzip: boolean): AsyncGenerator<ReadItem> {
  let stream: AsyncIterable<Buffer>;
  if (gzip) {
    const file = createReadStream(path, { highWaterMark: READ_CHUNK });
    const gunzip = file.pipe(createGunzip());
    file.on("error", (e) => gunzip.destroy(e));
    stream = gunzip;
  } else {
    stream = fileChunks(path);
  }
  let carry: Buffer | null = null;
  let line = 0;
  const parse = (buf: Buffer): ReadItem | null => {
    line++;
    let end = buf.length;
    if (end > 0 && buf[end - 1] === 0x0d) end--;
    if (end === 0) return null;
    let text: string;
    try {
      text = decoder.decode(buf.subarray(0, end));
    } catch (e) {
      return { ok: false, error: new RecordError("invalid_utf8", { file: path, line }, "the line is not valid UTF-8", "Re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8), or pass --on-error skip.", { cause: e }) };
    }
    if (text.trim() === "") return null;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return { ok: false, error: new RecordError("invalid_json", { file: path, line }, `not JSON (${(e as Error).message})`, "Each line must be one JSON object; fix the line or pass --on-error skip.", { cause: e }) };
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { ok: false, error: new RecordError("not_an_object", { file: path, line }, "the line is JSON but not an object", "Each line must be a JSON object like {\"id\": …, \"text\": …}.") };
    }
    return { ok: true, value: { record: value as Record<string, unknown>, line, bytes: buf.length + 1 } };
  };
  try {
    for await (const chunk of stream) {
      let start = 0;
      let nl = chunk.indexOf(0x0a, start);
      while (nl >= 0) {
        let piece = chunk.subarray(start, nl);
        if (carry !== null) {
          piece = Buffer.concat([carry, piece]);
          carry = null;
        }
        const item = parse(piece);
        if (item !== null) yield item;
        start = nl + 1;
        nl = chunk.indexOf(0x0a, start);
      }
      if (start < chunk.length) carry = carry === null ? Buffer.from(chunk.subarray(start)) : Buffer.concat([carry, chunk.subarray(start)]);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const truncated = code === "Z_BUF_ERROR" || code === "Z_DATA_ERROR" || /unexpected end/i.test((e as Error).message);
    yield {
      ok: false,
      error: new RecordError(
        truncated ? "truncated" : "unreadable",
        truncated || line > 0 ? { file: path, line: line + 1 } : { file: path },
        truncated ? `gzip stream is truncated or corrupt (${(e as Error).message})` : `cannot read (${(e as Error).message})`,
        truncated ? "The file was cut short; re-download or re-compress it (gzip -t checks it)." : "Check that the file exists and is readable.",
        { cause: e },
      ),
    };
    return;
  }
  if (carry !== null && carry.length > 0) {
    const item = parse(carry);
    if (item !== null) yield item;
  }
}

async function* readParquet(path: string): AsyncGenerator<ReadItem> {
  let file;
  let meta;
  try {
    file = await asyncBufferFromFile(path);
    meta = await parquetMetadataAsync(file);
  } catch (e) {
    yield { ok: false, error: new RecordError("truncated", { file: path }, `not a readable Parquet file (${(e as Error).message})`, "The footer is missing or corrupt: the file may be truncated; re-export it.", { cause: e }) };
    return;
  }
  let rowStart = 0;
  for (let g = 0; g < meta.row_groups.length; g++) {
    const n = Number(meta.row_groups[g]!.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await new Promise<Record<string, unknown>[]>((resolve, reject) => {
        parquetRead({ file: file!, metadata: meta, rowStart, rowEnd: rowStart + n, rowFormat: "object", onComplete: (r) => resolve(r as Record<string, unknown>[]) }).catch(reject);
      });
    } catch (e) {
      yield { ok: false, error: new RecordError("truncated", { file: path, rowGroup: g }, `cannot decode row group (${(e as Error).message})`, "The row group is corrupt or cut short; re-export the file.", { cause: e }) };
      return;
    }
    for (let i = 0; i < rows.length; i++) {
      yield { ok: true, value: { record: normalizeRow(rows[i]!), line: rowStart + i + 1, bytes: 0 } };
    }
    rowStart += n;
  }
}

function normalizeRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(row)) if (typeof row[k] === "bigint") row[k] = Number(row[k]);
  return row;
}
