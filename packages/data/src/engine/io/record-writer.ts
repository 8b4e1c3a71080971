import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { createGzip, type Gzip } from "node:zlib";
import { fileWriter, ParquetWriter, schemaFromColumnData } from "hyparquet-writer";
import type { DataFormat } from "./record-reader.js";

const WRITE_CHUNK_BYTES = 1 << 20;

/**
 * Writes records to JSONL (plain or gzip) or Parquet under a temporary name
 * (`<name>.tmp-<pid>`), renamed to the final name only by {@link close}: a failed or killed run
 * never leaves a complete-looking output. {@link abort} removes the temporary file.
 */
export class RecordWriter {
  private readonly tmp: string;
  private out: WriteStream | undefined;
  private gz: Gzip | undefined;
  private parquetRows: Record<string, unknown>[] = [];
  private parquet: ParquetWriter | undefined;
  private columns: string[] | undefined;
  /** Records written so far. */
  count = 0;
  /** Bytes of serialised records (before compression). */
  bytes = 0;

  private constructor(
    readonly path: string,
    readonly format: DataFormat,
  ) {
    this.tmp = `${path}.tmp-${process.pid}`;
  }

  /** Open a writer; the format follows the extension (`.parquet`, `.gz`, else JSONL). */
  static async open(path: string, format?: DataFormat): Promise<RecordWriter> {
    const fmt: DataFormat = format ?? (/\.parquet$/i.test(path) ? "parquet" : /\.gz$/i.test(path) ? "jsonl.gz" : "jsonl");
    await mkdir(dirname(path), { recursive: true });
    const w = new RecordWriter(path, fmt);
    if (fmt !== "parquet") {
      w.out = createWriteStream(w.tmp);
      if (fmt === "jsonl.gz") {
        w.gz = createGzip();
        w.gz.pipe(w.out);
      }
    }
    return w;
  }

  /** Append one record (backpressure-aware). */
  async write(record: Record<string, unknown>): Promise<void> {
    this.count++;
    if (this.format === "parquet") {
      this.parquetRows.push(record);
      if (this.parquetRows.length >= 10_000) this.flushParquet();
      return;
    }
    const line = JSON.stringify(record) + "\n";
    // A line goes straight into the chunk as UTF-8 when it surely fits (3 bytes per UTF-16 unit
    // at most); otherwise the chunk is written first, and a line larger than a chunk goes alone.
    if (3 * line.length > this.chunk.length - this.used) {
      await this.flushLines();
      if (3 * line.length > this.chunk.length) {
        await this.send(Buffer.from(line, "utf8"));
        return;
      }
    }
    this.used += this.chunk.write(line, this.used, "utf8");
  }

  // Lines are encoded into a chunk of WRITE_CHUNK_BYTES and written a chunk at a time: one stream
  // write per chunk instead of one per record (thousands of small writes cost more than the JSON
  // serialisation), and no joined string (a large one per chunk, allocated and collected).
  private chunk: Buffer = Buffer.allocUnsafe(WRITE_CHUNK_BYTES);
  private used = 0;
  /** Chunks the stream has finished with, filled again (fresh memory costs page faults each time). */
  private readonly spare: Buffer[] = [];

  private async flushLines(): Promise<void> {
    if (this.used === 0) return;
    const chunk = this.chunk;
    const full = chunk.subarray(0, this.used);
    // The stream keeps the chunk until it has written it: the next lines go into another.
    this.chunk = this.spare.pop() ?? Buffer.allocUnsafe(WRITE_CHUNK_BYTES);
    this.used = 0;
    await this.send(full, () => {
      if (this.spare.length < 2) this.spare.push(chunk);
    });
  }

  private async send(buf: Buffer, written?: () => void): Promise<void> {
    this.bytes += buf.length;
    const sink = this.gz ?? this.out!;
    const more = sink.write(buf, written === undefined ? undefined : (e) => (e ? undefined : written()));
    if (!more) await new Promise<void>((r) => sink.once("drain", () => r()));
  }

  private flushParquet(): void {
    if (this.parquetRows.length === 0) return;
    const rows = this.parquetRows;
    this.parquetRows = [];
    this.columns ??= Object.keys(rows[0]!);
    const columnData = this.columns.map((name) => ({
      name,
      data: rows.map((r) => {
        const v = r[name];
        return v === undefined || v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? (v ?? null) : JSON.stringify(v);
      }),
    }));
    if (this.parquet === undefined) {
      this.parquet = new ParquetWriter({ writer: fileWriter(this.tmp), schema: schemaFromColumnData({ columnData }) });
    }
    void this.parquet.write({ columnData, rowGroupSize: 100_000 });
  }

  /** Finish and move the file into place. */
  async close(): Promise<void> {
    if (this.format === "parquet") {
      if (this.parquet === undefined && this.parquetRows.length === 0) this.parquetRows.push({});
      this.flushParquet();
      await this.parquet!.finish();
    } else {
      await this.flushLines();
      const out = this.out!;
      const done = new Promise<void>((resolve, reject) => {
        out.once("finish", () => resolve());
        out.once("error", reject);
      });
      if (this.gz) this.gz.end();
      else out.end();
      await done;
    }
    await rename(this.tmp, this.path);
  }

  /** Discard the partial output. */
  async abort(): Promise<void> {
    this.used = 0;
    this.out?.destroy();
    await rm(this.tmp, { force: true });
  }
}
