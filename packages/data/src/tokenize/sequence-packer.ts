import { z } from "zod";
import { IGNORE_INDEX, type FormattedDoc } from "./record-formatter.js";

/** Packing strategies: best-fit decreasing, first-fit decreasing, concatenate-and-chunk, one document per sequence. */
export const PackStrategy = z.enum(["bfd", "ffd", "greedy", "pad"]);
export type PackStrategy = z.infer<typeof PackStrategy>;

/** Options of {@link SequencePacker}. */
export const PackerOptions = z.strictObject({
  /** Tokens per sequence. */
  seqLen: z.number().int().min(2).max(1_048_576),
  /** @default "bfd" */
  strategy: PackStrategy.default("bfd"),
  /** Documents longer than `seqLen`: cut into `seqLen` pieces, or dropped. @default "split" */
  overlong: z.enum(["split", "drop"]).default("split"),
  /** Documents held at once by `bfd` / `ffd` (memory stays bounded by `bufferSize × seqLen` tokens). @default 8192 */
  bufferSize: z.number().int().min(1).default(8192),
  /** Seed of the order in which packed sequences leave a buffer. @default 0 */
  seed: z.number().int().default(0),
  /** Token id written into padding. @default 0 */
  padId: z.number().int().min(0).default(0),
});
export type PackerOptions = z.input<typeof PackerOptions>;
export type ResolvedPackerOptions = z.output<typeof PackerOptions>;

/**
 * One training sequence of exactly `seqLen` tokens. `labels` is −100 on padding, on masked tokens and on the
 * first token of every document (so that, once the model shifts labels, no document learns to predict
 * another's first token). `positionIds` restart at 0 at every document; `cuSeqlens` are the document
 * boundaries `[0, …, realTokens]` for variable-length attention (padding is after the last boundary).
 */
export interface PackedSequence {
  inputIds: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
  cuSeqlens: Int32Array;
}

/** Counters of a packing run. */
export interface PackStats {
  /** Documents received. */
  documents: number;
  /** Documents cut into several pieces (`overlong: split`; for `greedy`, documents that cross a sequence end). */
  split: number;
  /** Documents dropped for being longer than `seqLen` (`overlong: drop`) or empty. */
  dropped: number;
  /** Real (non-padding) tokens written. */
  tokens: number;
  /** Tokens with a label (not −100). */
  trainedTokens: number;
  sequences: number;
}

interface Piece {
  ids: Int32Array;
  labels: Int32Array;
  order: number;
}

/** Deterministic 32-bit PRNG (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Packs tokenized documents into fixed-length sequences, streaming: `push` returns the sequences that are
 * complete, `finish` the rest. Deterministic for a given input order and seed.
 *
 * @example
 * const packer = new SequencePacker({ seqLen: 4096, strategy: "bfd", padId: tok.padId });
 * for (const doc of docs) for (const seq of packer.push(doc)) write(seq);
 * for (const seq of packer.finish()) write(seq);
 */
export class SequencePacker {
  readonly options: ResolvedPackerOptions;
  readonly stats: PackStats = { documents: 0, split: 0, dropped: 0, tokens: 0, trainedTokens: 0, sequences: 0 };
  #buffer: Piece[] = [];
  #order = 0;
  #flushes = 0;
  // greedy state
  #current: Piece[] = [];
  #currentFill = 0;

  constructor(options: PackerOptions) {
    this.options = PackerOptions.parse(options);
  }

  /** Real tokens / token slots so far. */
  get efficiency(): number {
    return this.stats.sequences === 0 ? 0 : this.stats.tokens / (this.stats.sequences * this.options.seqLen);
  }

  /** Adds one document; returns the sequences completed by it. */
  push(doc: FormattedDoc): PackedSequence[] {
    const { seqLen, strategy, overlong } = this.options;
    this.stats.documents++;
    const n = doc.ids.length;
    if (n === 0 || (n > seqLen && overlong === "drop")) {
      this.stats.dropped++;
      return [];
    }
    if (strategy === "greedy") return this.pushGreedy(doc);
    const pieces: Piece[] = [];
    for (let at = 0; at < n; at += seqLen) {
      pieces.push({ ids: doc.ids.subarray(at, at + seqLen), labels: doc.labels.subarray(at, at + seqLen), order: this.#order++ });
    }
    if (pieces.length > 1) this.stats.split++;
    if (strategy === "pad") return pieces.map((p) => this.build([p]));
    this.#buffer.push(...pieces);
    return this.#buffer.length >= this.options.bufferSize ? this.flush(false) : [];
  }

  /** Emits everything still held. */
  finish(): PackedSequence[] {
    if (this.options.strategy === "greedy") {
      const out = this.#current.length > 0 ? [this.build(this.#current)] : [];
      this.#current = [];
      this.#currentFill = 0;
      return out;
    }
    return this.#buffer.length > 0 ? this.flush(true) : [];
  }

  private pushGreedy(doc: FormattedDoc): PackedSequence[] {
    const { seqLen } = this.options;
    const out: PackedSequence[] = [];
    let at = 0;
    if (doc.ids.length > seqLen - this.#currentFill) this.stats.split++;
    while (at < doc.ids.length) {
      const take = Math.min(doc.ids.length - at, seqLen - this.#currentFill);
      this.#current.push({ ids: doc.ids.subarray(at, at + take), labels: doc.labels.subarray(at, at + take), order: this.#order++ });
      this.#currentFill += take;
      at += take;
      if (this.#currentFill === seqLen) {
        out.push(this.build(this.#current));
        this.#current = [];
        this.#currentFill = 0;
      }
    }
    return out;
  }

  /** Packs the buffer into bins; unless `final`, pieces of bins under half full wait for the next buffer. */
  private flush(final: boolean): PackedSequence[] {
    const { seqLen, strategy } = this.options;
    const pieces = this.#buffer;
    this.#buffer = [];
    pieces.sort((a, b) => b.ids.length - a.ids.length || a.order - b.order);
    const bins = strategy === "bfd" ? packBestFit(pieces, seqLen) : packFirstFit(pieces, seqLen);
    const ready: Piece[][] = [];
    for (const bin of bins) {
      const fill = bin.reduce((s, p) => s + p.ids.length, 0);
      if (!final && fill * 2 < seqLen) this.#buffer.push(...bin);
      else ready.push(bin);
    }
    // Bins come out roughly sorted by their largest document; shuffle so training order carries no length bias.
    const rand = mulberry32(this.options.seed * 1_000_003 + this.#flushes++);
    for (let i = ready.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [ready[i], ready[j]] = [ready[j]!, ready[i]!];
    }
    return ready.map((bin) => this.build(bin));
  }

  private build(pieces: Piece[]): PackedSequence {
    const { seqLen, padId } = this.options;
    const inputIds = new Int32Array(seqLen).fill(padId);
    const labels = new Int32Array(seqLen).fill(IGNORE_INDEX);
    const positionIds = new Int32Array(seqLen);
    const cuSeqlens = new Int32Array(pieces.length + 1);
    let at = 0;
    pieces.forEach((p, k) => {
      const n = p.ids.length;
      inputIds.set(p.ids, at);
      labels.set(p.labels, at);
      labels[at] = IGNORE_INDEX;
      for (let i = 0; i < n; i++) positionIds[at + i] = i;
      at += n;
      cuSeqlens[k + 1] = at;
    });
    for (let i = at; i < seqLen; i++) positionIds[i] = i - at;
    let trained = 0;
    for (let i = 0; i < at; i++) if (labels[i] !== IGNORE_INDEX) trained++;
    this.stats.tokens += at;
    this.stats.trainedTokens += trained;
    this.stats.sequences++;
    return { inputIds, labels, positionIds, cuSeqlens };
  }
}

/** Best-fit decreasing: each piece (longest first) into the fullest bin it fits. O(n · seqLen/32) worst case. */
function packBestFit(pieces: Piece[], seqLen: number): Piece[][] {
  const bins: Piece[][] = [];
  const byFree: number[][] = Array.from({ length: seqLen + 1 }, () => []);
  const words = new Uint32Array((seqLen >>> 5) + 1);
  const mark = (f: number) => {
    words[f >>> 5]! |= 1 << (f & 31);
  };
  const unmarkIfEmpty = (f: number) => {
    if (byFree[f]!.length === 0) words[f >>> 5]! &= ~(1 << (f & 31));
  };
  const nextFree = (from: number): number => {
    let w = from >>> 5;
    let bits = words[w]! & (~0 << (from & 31));
    while (bits === 0) {
      if (++w >= words.length) return -1;
      bits = words[w]!;
    }
    const f = (w << 5) + (31 - Math.clz32(bits & -bits));
    return f <= seqLen ? f : -1;
  };
  for (const p of pieces) {
    const n = p.ids.length;
    const f = nextFree(n);
    let bin: number;
    let free: number;
    if (f < 0) {
      bin = bins.length;
      bins.push([]);
      free = seqLen;
    } else {
      bin = byFree[f]!.pop()!;
      unmarkIfEmpty(f);
      free = f;
    }
    bins[bin]!.push(p);
    const left = free - n;
    if (left > 0) {
      byFree[left]!.push(bin);
      mark(left);
    }
  }
  return bins;
}

/** First-fit decreasing: each piece (longest first) into the first bin it fits, via a max segment tree. */
function packFirstFit(pieces: Piece[], seqLen: number): Piece[][] {
  let size = 1;
  while (size < pieces.length) size <<= 1;
  const tree = new Int32Array(2 * size); // max free space per subtree; unopened bins count as 0
  const bins: Piece[][] = [];
  const update = (i: number, v: number) => {
    let k = i + size;
    tree[k] = v;
    for (k >>= 1; k >= 1; k >>= 1) tree[k] = Math.max(tree[2 * k]!, tree[2 * k + 1]!);
  };
  for (const p of pieces) {
    const n = p.ids.length;
    let bin: number;
    if (tree[1]! >= n) {
      let k = 1;
      while (k < size) k = tree[2 * k]! >= n ? 2 * k : 2 * k + 1;
      bin = k - size;
    } else {
      bin = bins.length;
      bins.push([]);
      update(bin, seqLen);
    }
    bins[bin]!.push(p);
    update(bin, tree[bin + size]! - n);
  }
  return bins;
}
