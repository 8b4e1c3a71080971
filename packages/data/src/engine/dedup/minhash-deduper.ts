import { createHash } from "node:crypto";
import { z } from "zod";
import { simplifyText } from "../text/simplify-text.js";
import { SpacyEnglishTokenizer } from "../tokenizer/spacy-english-tokenizer.js";
import { MinHashKernel } from "./minhash-kernel.js";
import { NumpyRandomState } from "./numpy-random-state.js";

/** MinHash configuration; defaults are datatrove's `MinhashConfig()`. */
export const MinHashOptions = z.strictObject({
  /** Word n-gram size of a shingle. @default 5 */
  n_grams: z.number().int().min(1).default(5),
  /** LSH bands. @default 14 */
  num_buckets: z.number().int().min(1).default(14),
  /** Rows (hashes) per band. @default 8 */
  hashes_per_bucket: z.number().int().min(1).default(8),
  /** Seed of the permutation parameters (numpy `RandomState`). @default 1 */
  seed: z.number().int().min(0).default(1),
  /** Shingle hash: 64-bit xxhash (datatrove's default) or sha1 (FineWeb's). @default "xxhash" */
  hash_fc: z.enum(["xxhash", "sha1"]).default("xxhash"),
  /** MiB of band records the audit pipeline holds before it sorts them and spills a run to disk (no effect on decisions). @default 128 */
  memory_mb: z.number().positive().default(128),
});
export type MinHashOptions = z.input<typeof MinHashOptions>;

const encoder = new TextEncoder();

/** Insertion-ordered set of 64-bit values given as (hi, lo) pairs: open addressing, exact. */
class HashSet64 {
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  size = 0;
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(capacity: number) {
    this.hi = new Uint32Array(Math.max(1, capacity));
    this.lo = new Uint32Array(Math.max(1, capacity));
    let cap = 16;
    while (cap < 2 * capacity) cap <<= 1;
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
  }

  add(hi: number, lo: number): void {
    let p = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const s = this.slots[p]!;
      if (s === -1) {
        this.slots[p] = this.size;
        this.hi[this.size] = hi;
        this.lo[this.size] = lo;
        this.size++;
        return;
      }
      if (this.hi[s] === hi && this.lo[s] === lo) return;
      p = (p + 1) & this.mask;
    }
  }
}

/**
 * datatrove's MinHash signatures: shingles are word n-grams (spaCy English words of
 * `simplify_text(text)`, joined by spaces) hashed to 64 bits; each of `num_buckets *
 * hashes_per_bucket` permutations is `(h * a + b) mod 2^64 mod (2^61 - 1)` — numpy's uint64
 * product wraps before the modulo, and so does this one — and the signature keeps each minimum.
 * xxhash and the permutations run in a small WebAssembly kernel ({@link MinHashKernel}).
 */
export class MinHasher {
  readonly options: z.output<typeof MinHashOptions>;
  readonly numHashes: number;
  /** UTF-8 bytes of recently seen words (bounded; sha1 shingles only). */
  private readonly utf8Cache = new Map<string, Uint8Array>();

  private constructor(
    options: z.output<typeof MinHashOptions>,
    private readonly kernel: MinHashKernel,
    private readonly tokenizer: SpacyEnglishTokenizer,
  ) {
    this.options = options;
    this.numHashes = options.num_buckets * options.hashes_per_bucket;
  }

  /** Build a hasher (the permutation parameters are numpy's `RandomState(seed)` draws). */
  static create(options: MinHashOptions = {}, tokenizer = SpacyEnglishTokenizer.shared()): Promise<MinHasher> {
    const o = MinHashOptions.parse(options);
    const numHashes = o.num_buckets * o.hashes_per_bucket;
    const mersenne = (1n << 61n) - 1n;
    const rs = new NumpyRandomState(o.seed);
    const a = rs.randintUint64(1n, mersenne, numHashes);
    const b = rs.randintUint64(0n, mersenne, numHashes);
    return Promise.resolve(new MinHasher(o, new MinHashKernel(a, b), tokenizer));
  }

  private words(text: string): string[] {
    return this.tokenizer.words(simplifyText(text));
  }

  /**
   * Shingle hashes of a text, deduplicated (the minimum over a set equals that over the list),
   * and the number of shingles with repeats (datatrove's `n_shingles`).
   */
  shingles(text: string): { hi: Uint32Array; lo: Uint32Array; count: number } {
    const n = this.options.n_grams;
    const words = this.words(text);
    const count = Math.max(0, words.length - n + 1);
    const set = new HashSet64(count);
    if (this.options.hash_fc === "xxhash") {
      const pairs = this.kernel.shingleHashes(words, n);
      for (let i = 0; i < count; i++) set.add(pairs[2 * i + 1]!, pairs[2 * i]!);
    } else {
      const bytes = this.utf8Words(words);
      const maxLen = bytes.reduce((m, b) => Math.max(m, b.length), 0);
      const buf = new Uint8Array(n * (maxLen + 1));
      for (let i = 0; i < count; i++) {
        let pos = 0;
        for (let j = 0; j < n; j++) {
          if (j > 0) buf[pos++] = 0x20;
          const b = bytes[i + j]!;
          // A byte loop beats TypedArray.set for words this short.
          for (let k = 0; k < b.length; k++) buf[pos++] = b[k]!;
        }
        const d = createHash("sha1").update(buf.subarray(0, pos)).digest();
        set.add(d.readUInt32LE(4), d.readUInt32LE(0));
      }
    }
    return { hi: set.hi.subarray(0, set.size), lo: set.lo.subarray(0, set.size), count };
  }

  private utf8Words(words: readonly string[]): Uint8Array[] {
    const cache = this.utf8Cache;
    if (cache.size > 200_000) cache.clear();
    return words.map((w) => {
      let b = cache.get(w);
      if (b === undefined) cache.set(w, (b = encoder.encode(w)));
      return b;
    });
  }

  /**
   * The signature of a text: `numHashes` 64-bit minima as interleaved [hi, lo] 32-bit words,
   * or `null` when the text has no shingle (datatrove writes no signature for it).
   */
  signature(text: string): Uint32Array | null {
    // xxhash: shingles are hashed and permuted inside the kernel; repeated shingles leave the
    // minima unchanged, so they are not removed first.
    if (this.options.hash_fc === "xxhash") return this.kernel.signature(this.words(text), this.options.n_grams);
    const { hi, lo } = this.shingles(text);
    if (hi.length === 0) return null;
    return this.signatureOf(hi, lo);
  }

  /** Signature of precomputed shingle hashes (at least one). */
  signatureOf(sh: Uint32Array, sl: Uint32Array): Uint32Array {
    return this.kernel.signatureOf(sh, sl);
  }
}
