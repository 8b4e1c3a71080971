/** One duplicate cluster: the kept representative and the removed members (document indices). */
export interface MinHashCluster {
  kept: number;
  removed: number[];
}

/** What {@link MinHashIndex.clusters} finds. */
export interface MinHashResult {
  /** Document index → the kept document of its cluster, for every removed document. */
  removedBy: Map<number, number>;
  /** Clusters ordered by their kept document. */
  clusters: MinHashCluster[];
}

/**
 * MinHash LSH over signatures, with datatrove's stages 2 and 3: within each band, signatures are
 * sorted (band values, then document index) and each one equal to its predecessor is a duplicate
 * pair; pairs are joined with union by size (ties keep the earlier root), and the root of each
 * cluster is the document kept. Signatures from several shards can be added under global indices,
 * so dedup across shards stays global.
 */
export class MinHashIndex {
  private readonly words: number;
  private chunks: Uint32Array[] = [];
  private readonly chunkDocs = 4096;
  private readonly indices: number[] = [];

  constructor(
    readonly numBuckets: number,
    readonly hashesPerBucket: number,
  ) {
    this.words = numBuckets * hashesPerBucket * 2;
  }

  /** Number of signatures held. */
  get size(): number {
    return this.indices.length;
  }

  /** Add a document's signature (interleaved [hi, lo] words) under its global index. */
  add(index: number, signature: Uint32Array): void {
    if (signature.length !== this.words) throw new RangeError(`signature has ${signature.length} words, expected ${this.words}`);
    const slot = this.indices.length;
    const c = Math.floor(slot / this.chunkDocs);
    if (c === this.chunks.length) this.chunks.push(new Uint32Array(this.chunkDocs * this.words));
    this.chunks[c]!.set(signature, (slot % this.chunkDocs) * this.words);
    this.indices.push(index);
  }

  private view(slot: number): [Uint32Array, number] {
    return [this.chunks[Math.floor(slot / this.chunkDocs)]!, (slot % this.chunkDocs) * this.words];
  }

  /** All signatures as one binary blob (`u32 count`, then per entry `u32 index` + words). */
  serialize(): Buffer {
    const n = this.indices.length;
    const buf = Buffer.alloc(4 + n * (4 + this.words * 4));
    buf.writeUInt32LE(n, 0);
    let off = 4;
    for (let s = 0; s < n; s++) {
      buf.writeUInt32LE(this.indices[s]!, off);
      off += 4;
      const [arr, base] = this.view(s);
      for (let k = 0; k < this.words; k++, off += 4) buf.writeUInt32LE(arr[base + k]!, off);
    }
    return buf;
  }

  /** Add the signatures of a {@link serialize}d index (another shard), shifting indices by `offset`. */
  merge(blob: Uint8Array, offset = 0): void {
    const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    const n = buf.readUInt32LE(0);
    let off = 4;
    const sig = new Uint32Array(this.words);
    for (let s = 0; s < n; s++) {
      const idx = buf.readUInt32LE(off) + offset;
      off += 4;
      for (let k = 0; k < this.words; k++, off += 4) sig[k] = buf.readUInt32LE(off);
      this.add(idx, sig);
    }
  }

  /** Find duplicate clusters. */
  clusters(): MinHashResult {
    const n = this.indices.length;
    const uf = new ClusterUnion(n);
    const order = new Int32Array(n);
    const bandWords = this.hashesPerBucket * 2;
    for (let b = 0; b < this.numBuckets; b++) {
      const from = b * bandWords;
      const cmp = (i: number, j: number): number => {
        const [ai, bi] = this.view(i);
        const [aj, bj] = this.view(j);
        for (let k = from; k < from + bandWords; k++) {
          const d = ai[bi + k]! - aj[bj + k]!;
          if (d !== 0) return d;
        }
        return 0;
      };
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((i, j) => cmp(i, j) || this.indices[i]! - this.indices[j]!);
      for (let t = 1; t < n; t++) if (cmp(order[t - 1]!, order[t]!) === 0) uf.union(order[t - 1]!, order[t]!);
    }
    return uf.result((s) => this.indices[s]!);
  }
}

/**
 * datatrove's stage 3 over slots 0..n-1: duplicate pairs joined with union by size (ties keep the
 * first argument's root, path halving), then each root is the kept document of its cluster.
 */
export class ClusterUnion {
  private readonly parent: Int32Array;
  private readonly size: Int32Array;

  constructor(readonly n: number) {
    this.parent = new Int32Array(n);
    this.size = new Int32Array(n).fill(1);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }

  find(x: number): number {
    const parent = this.parent;
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  }

  /** Join the clusters of a duplicate pair (`a` precedes `b` in band order). */
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    if (this.size[ra]! >= this.size[rb]!) {
      this.parent[rb] = ra;
      this.size[ra]! += this.size[rb]!;
    } else {
      this.parent[ra] = rb;
      this.size[rb]! += this.size[ra]!;
    }
  }

  /** Clusters and removals, with slots mapped to document indices by `indexOf`. */
  result(indexOf: (slot: number) => number): MinHashResult {
    const removedBy = new Map<number, number>();
    const byRoot = new Map<number, number[]>();
    for (let s = 0; s < this.n; s++) {
      const r = this.find(s);
      if (r === s) continue;
      const kept = indexOf(r);
      removedBy.set(indexOf(s), kept);
      let list = byRoot.get(kept);
      if (list === undefined) byRoot.set(kept, (list = []));
      list.push(indexOf(s));
    }
    const clusters = [...byRoot]
      .sort((x, y) => x[0] - y[0])
      .map(([kept, removed]) => ({ kept, removed: removed.sort((x, y) => x - y) }));
    return { removedBy, clusters };
  }
}
