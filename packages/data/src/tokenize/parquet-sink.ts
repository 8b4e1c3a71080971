import { randomBytes } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import { ParquetWriter } from "hyparquet-writer";
import { fileWriter } from "hyparquet-writer/src/node.js";
import type { PackedSequence } from "./sequence-packer.js";

const COLUMNS = ["input_ids", "labels", "position_ids", "cu_seqlens"] as const;
const ROWS_PER_GROUP = 256;

/** Schema of a required `list<int32 not null>` column (Parquet's standard three-level LIST). */
function listColumn(name: string) {
  return [
    { name, repetition_type: "REQUIRED" as const, converted_type: "LIST" as const, num_children: 1 },
    { name: "list", repetition_type: "REPEATED" as const, num_children: 1 },
    { name: "element", type: "INT32" as const, repetition_type: "REQUIRED" as const },
  ];
}

/**
 * Writes packed sequences as one Parquet file, a row per sequence with `list<int32>` columns `input_ids`,
 * `labels`, `position_ids` (each `seq_len` long) and `cu_seqlens`; row groups of 256 sequences; the file
 * appears under its name only once complete.
 */
export class ParquetSink {
  #rows: PackedSequence[] = [];
  #count = 0;
  readonly #writer: ParquetWriter;

  private constructor(
    readonly path: string,
    private readonly tmp: string,
  ) {
    this.#writer = new ParquetWriter({
      writer: fileWriter(tmp),
      schema: [{ name: "root", num_children: COLUMNS.length }, ...COLUMNS.flatMap(listColumn)],
      createdBy: "nexa-forge data pack",
    });
  }

  static create(path: string): ParquetSink {
    return new ParquetSink(path, `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  }

  get rows(): number {
    return this.#count;
  }

  async append(seq: PackedSequence): Promise<void> {
    this.#rows.push(seq);
    this.#count++;
    if (this.#rows.length >= ROWS_PER_GROUP) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.#rows.length === 0) return;
    const rows = this.#rows;
    this.#rows = [];
    await this.#writer.write({
      columnData: [
        { name: "input_ids", data: rows.map((r) => Array.from(r.inputIds)) },
        { name: "labels", data: rows.map((r) => Array.from(r.labels)) },
        { name: "position_ids", data: rows.map((r) => Array.from(r.positionIds)) },
        { name: "cu_seqlens", data: rows.map((r) => Array.from(r.cuSeqlens)) },
      ],
      rowGroupSize: ROWS_PER_GROUP,
    });
  }

  async close(): Promise<void> {
    await this.flush();
    await this.#writer.finish();
    await rename(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    await rm(this.tmp, { force: true });
  }
}
