import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ClusterUnion, type MinHashResult } from "./minhash-index.js";

/** Options of {@link SpillingMinHashIndex}. */
export interface SpillOptions {
  /** Folder for the sorted band runs; created on the first spill, removed by {@link SpillingMinHashIndex.dispose}. */
  dir: string;
  /** Bytes of band records held in memory before they are sorted and written out. @default 128 MiB */
  memoryBytes?: number;
}

/** Records read from a run file at a time, at most (fewer when many runs share the memory budget). */
const READ_RECORDS = 4096;

/** One sorted source of band records: a run file read in chunks, or the in-memory tail. */
interface RunCursor {
  /** Words of the current record start at `words[at]`; its slot follows its band words. */
  words: Uint32Array;
  at: number;
  /** Moves to the next record; false at the end. */
  next(): boolean;
  close(): void;
}

/**
 * MinHash LSH with bounded memory, as datatrove lays it out on disk: each signature is cut into
 * its bands, band records (band words + slot) are buffered, and when the buffer holds
 * `memoryBytes` every band's buffer is sorted and written out: one run file, band after band
 * (datatrove's stage-1 bucket files, sorted per band). {@link clusters} merges each band's runs in sorted order and
 * joins equal neighbours (stage 2), then builds clusters (stage 3). Decisions equal
 * {@link MinHashIndex}'s exactly: the order within a band is (band words, document index) in both.
 * What stays in memory: 4 bytes per document for its index and 8 for the union-find.
 */
export class SpillingMinHashIndex {
  /** Run files written so far; each holds `records` records per band, band after band. */
  readonly runs: { path: string; records: number }[] = [];
  private readonly bandWords: number;
  private readonly recordWords: number;
  private readonly bufferDocs: number;
  private readonly memoryBytes: number;
  private readonly buffers: Uint32Array[];
  private buffered = 0;
  private indices = new Int32Array(1024);
  private count = 0;

  constructor(
    readonly numBuckets: number,
    readonly hashesPerBucket: number,
    private readonly options: SpillOptions,
  ) {
    this.bandWords = hashesPerBucket * 2;
    this.recordWords = this.bandWords + 1;
    this.memoryBytes = options.memoryBytes ?? 128 * 2 ** 20;
    this.bufferDocs = Math.max(1, Math.floor(this.memoryBytes / (numBuckets * this.recordWords * 4)));
    this.buffers = Array.from({ length: numBuckets }, () => new Uint32Array(Math.min(this.bufferDocs, 1024) * this.recordWords));
  }

  /** Number of signatures added. */
  get size(): number {
    return this.count;
  }

  /** Add a document's signature (interleaved [hi, lo] words) under its global index. */
  add(index: number, signature: Uint32Array): void {
    const words = this.numBuckets * this.bandWords;
    if (signature.length !== words) throw new RangeError(`signature has ${signature.length} words, expected ${words}`);
    const slot = this.count++;
    if (slot === this.indices.length) {
      const grown = new Int32Array(this.indices.length * 2);
      grown.set(this.indices);
      this.indices = grown;
    }
    this.indices[slot] = index;
    const at = this.buffered * this.recordWords;
    for (let b = 0; b < this.numBuckets; b++) {
      let buf = this.buffers[b]!;
      if (at + this.recordWords > buf.length) {
        const grown = new Uint32Array(Math.min(this.bufferDocs, 2 * (buf.length / this.recordWords)) * this.recordWords);
        grown.set(buf);
        this.buffers[b] = buf = grown;
      }
      buf.set(signature.subarray(b * this.bandWords, (b + 1) * this.bandWords), at);
      buf[at + this.bandWords] = slot;
    }
    if (++this.buffered === this.bufferDocs) this.spill();
  }

  private compareBand(a: Uint32Array, i: number, b: Uint32Array, j: number): number {
    for (let k = 0; k < this.bandWords; k++) {
      const d = a[i + k]! - b[j + k]!;
      if (d !== 0) return d;
    }
    return 0;
  }

  /** Band words, then document index: the order of {@link MinHashIndex}'s sort. */
  private compare(a: Uint32Array, i: number, b: Uint32Array, j: number): number {
    return this.compareBand(a, i, b, j) || this.indices[a[i + this.bandWords]!]! - this.indices[b[j + this.bandWords]!]!;
  }

  /** Record order of the in-memory buffer of band `b`, sorted. */
  private sortedBuffer(b: number): Int32Array {
    const buf = this.buffers[b]!;
    const w = this.recordWords;
    const order = new Int32Array(this.buffered);
    for (let i = 0; i < order.length; i++) order[i] = i;
    order.sort((x, y) => this.compare(buf, x * w, buf, y * w));
    return order;
  }

  private spill(): void {
    if (this.buffered === 0) return;
    if (this.runs.length === 0) mkdirSync(this.options.dir, { recursive: true });
    const w = this.recordWords;
    const path = join(this.options.dir, `run-${this.runs.length}.u32`);
    const fd = openSync(path, "w");
    try {
      for (let b = 0; b < this.numBuckets; b++) {
        const buf = this.buffers[b]!;
        const order = this.sortedBuffer(b);
        const out = new Uint32Array(order.length * w);
        for (let r = 0; r < order.length; r++) out.set(buf.subarray(order[r]! * w, order[r]! * w + w), r * w);
        const bytes = new Uint8Array(out.buffer);
        for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
      }
    } finally {
      closeSync(fd);
    }
    this.runs.push({ path, records: this.buffered });
    this.buffered = 0;
  }

  /** Band `b`'s section of a run file, read `chunkRecords` at a time. */
  private fileCursor(run: { path: string; records: number }, b: number, chunkRecords: number): RunCursor {
    const fd = openSync(run.path, "r");
    const w = this.recordWords;
    const words = new Uint32Array(chunkRecords * w);
    const bytes = new Uint8Array(words.buffer);
    let records = 0;
    let offset = b * run.records * w * 4;
    const end = offset + run.records * w * 4;
    const cursor: RunCursor = {
      words,
      at: -w,
      next() {
        cursor.at += w;
        if (cursor.at < records * w) return true;
        const got = offset < end ? readSync(fd, bytes, 0, Math.min(bytes.length, end - offset), offset) : 0;
        offset += got;
        records = Math.floor(got / (w * 4));
        cursor.at = 0;
        return records > 0;
      },
      close: () => closeSync(fd),
    };
    return cursor;
  }

  private memoryCursor(b: number): RunCursor {
    const order = this.sortedBuffer(b);
    const w = this.recordWords;
    const buf = this.buffers[b]!;
    let r = -1;
    const cursor: RunCursor = {
      words: buf,
      at: 0,
      next() {
        if (++r >= order.length) return false;
        cursor.at = order[r]! * w;
        return true;
      },
      close() {},
    };
    return cursor;
  }

  /** Find duplicate clusters: each band's sorted runs merged, equal neighbours joined. */
  clusters(): MinHashResult {
    const uf = new ClusterUnion(this.count);
    const bw = this.bandWords;
    const prev = new Uint32Array(this.recordWords);
    for (let b = 0; b < this.numBuckets; b++) {
      // One band is merged at a time: its runs' read buffers share the memory budget.
      const chunk = Math.max(64, Math.min(READ_RECORDS, Math.floor(this.memoryBytes / (Math.max(1, this.runs.length) * this.recordWords * 4))));
      const cursors = this.runs.map((run) => this.fileCursor(run, b, chunk));
      if (this.buffered > 0) cursors.push(this.memoryCursor(b));
      try {
        // Binary min-heap of cursors on their current record.
        const heap = cursors.filter((c) => c.next());
        const less = (x: RunCursor, y: RunCursor): boolean => this.compare(x.words, x.at, y.words, y.at) < 0;
        const down = (i: number): void => {
          for (;;) {
            const l = 2 * i + 1;
            const r = l + 1;
            let m = i;
            if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
            if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
            if (m === i) return;
            [heap[i], heap[m]] = [heap[m]!, heap[i]!];
            i = m;
          }
        };
        for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
        let first = true;
        while (heap.length > 0) {
          const top = heap[0]!;
          const slot = top.words[top.at + bw]!;
          if (!first && this.compareBand(prev, 0, top.words, top.at) === 0) uf.union(prev[bw]!, slot);
          prev.set(top.words.subarray(top.at, top.at + bw + 1));
          first = false;
          if (!top.next()) {
            const last = heap.pop()!;
            if (heap.length === 0) break;
            heap[0] = last;
          }
          down(0);
        }
      } finally {
        for (const c of cursors) c.close();
      }
    }
    return uf.result((s) => this.indices[s]!);
  }

  /** Remove the run files. */
  dispose(): void {
    rmSync(this.options.dir, { recursive: true, force: true });
    this.runs.length = 0;
  }
}
