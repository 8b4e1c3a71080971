import { createHash } from "node:crypto";
import xxhashWasm from "xxhash-wasm";
import { z } from "zod";
import { simplifyText } from "../text/simplify-text.js";
import { SpacyEnglishTokenizer } from "../tokenizer/spacy-english-tokenizer.js";
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

type Xxhash = Awaited<ReturnType<typeof xxhashWasm>>;
let xxhashPromise: Promise<Xxhash> | undefined;

/** Hashes the UTF-8 bytes of a shingle to 64 bits, written to `out` as [high 32 bits, low 32 bits]. */
type ShingleHasher = (bytes: Uint8Array, out: Uint32Array) => void;

/**
 * datatrove's MinHash signatures: shingles are word n-grams (spaCy English words of
 * `simplify_text(text)`, joined by spaces) hashed to 64 bits; each of `num_buckets *
 * hashes_per_bucket` permutations is `(h * a + b) mod 2^64 mod (2^61 - 1)` — numpy's uint64
 * product wraps before the modulo, and so does this one — and the signature keeps each minimum.
 */
export class MinHasher {
  readonly options: z.output<typeof MinHashOptions>;
  readonly numHashes: number;
  /** UTF-8 bytes of recently seen words (bounded). */
  private readonly utf8Cache = new Map<string, Uint8Array>();
  private readonly aHi: Uint32Array;
  private readonly aLo: Uint32Array;
  private readonly bHi: Uint32Array;
  private readonly bLo: Uint32Array;

  private constructor(
    options: z.output<typeof MinHashOptions>,
    private readonly hasher: ShingleHasher,
    private readonly tokenizer: SpacyEnglishTokenizer,
  ) {
    this.options = options;
    this.numHashes = options.num_buckets * options.hashes_per_bucket;
    const mersenne = (1n << 61n) - 1n;
    const rs = new NumpyRandomState(options.seed);
    const a = rs.randintUint64(1n, mersenne, this.numHashes);
    const b = rs.randintUint64(0n, mersenne, this.numHashes);
    const split = (xs: bigint[]): [Uint32Array, Uint32Array] => [
      Uint32Array.from(xs, (x) => Number(x >> 32n)),
      Uint32Array.from(xs, (x) => Number(x & 0xffffffffn)),
    ];
    [this.aHi, this.aLo] = split(a);
    [this.bHi, this.bLo] = split(b);
  }

  /** Build a hasher (loads the xxhash WebAssembly module once per process). */
  static async create(options: MinHashOptions = {}, tokenizer = SpacyEnglishTokenizer.shared()): Promise<MinHasher> {
    const o = MinHashOptions.parse(options);
    let hasher: ShingleHasher;
    if (o.hash_fc === "xxhash") {
      const xx = await (xxhashPromise ??= xxhashWasm());
      const b64 = new BigUint64Array(1);
      const u32 = new Uint32Array(b64.buffer);
      const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
      hasher = (bytes, out) => {
        b64[0] = xx.h64Raw(bytes, 0n);
        out[0] = littleEndian ? u32[1]! : u32[0]!;
        out[1] = littleEndian ? u32[0]! : u32[1]!;
      };
    } else {
      hasher = (bytes, out) => {
        const d = createHash("sha1").update(bytes).digest();
        out[0] = d.readUInt32LE(4);
        out[1] = d.readUInt32LE(0);
      };
    }
    return new MinHasher(o, hasher, tokenizer);
  }

  /**
   * Shingle hashes of a text, deduplicated (the minimum over a set equals that over the list),
   * and the number of shingles with repeats (datatrove's `n_shingles`).
   */
  shingles(text: string): { hi: Uint32Array; lo: Uint32Array; count: number } {
    const n = this.options.n_grams;
    const words = this.tokenizer.words(simplifyText(text));
    const count = Math.max(0, words.length - n + 1);
    const bytes: Uint8Array[] = new Array(words.length);
    const cache = this.utf8Cache;
    if (cache.size > 200_000) cache.clear();
    let maxLen = 0;
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      let b = cache.get(w);
      if (b === undefined) cache.set(w, (b = encoder.encode(w)));
      bytes[i] = b;
      if (b.length > maxLen) maxLen = b.length;
    }
    const buf = new Uint8Array(n * (maxLen + 1));
    const set = new HashSet64(count);
    const h = new Uint32Array(2);
    for (let i = 0; i < count; i++) {
      let pos = 0;
      for (let j = 0; j < n; j++) {
        if (j > 0) buf[pos++] = 0x20;
        const b = bytes[i + j]!;
        // A byte loop beats TypedArray.set for words this short.
        for (let k = 0; k < b.length; k++) buf[pos++] = b[k]!;
      }
      this.hasher(buf.subarray(0, pos), h);
      set.add(h[0]!, h[1]!);
    }
    return { hi: set.hi.subarray(0, set.size), lo: set.lo.subarray(0, set.size), count };
  }

  /**
   * The signature of a text: `numHashes` 64-bit minima as interleaved [hi, lo] 32-bit words,
   * or `null` when the text has no shingle (datatrove writes no signature for it).
   */
  signature(text: string): Uint32Array | null {
    const { hi, lo } = this.shingles(text);
    if (hi.length === 0) return null;
    return this.signatureOf(hi, lo);
  }

  /** Signature of precomputed shingle hashes. */
  signatureOf(sh: Uint32Array, sl: Uint32Array): Uint32Array {
    const H = this.numHashes;
    const out = new Uint32Array(2 * H).fill(0xffffffff);
    const { aHi, aLo, bHi, bLo } = this;
    for (let k = 0; k < H; k++) {
      const ah = aHi[k]!;
      const al = aLo[k]!;
      const a0 = al & 0xffff;
      const a1 = al >>> 16;
      const bh = bHi[k]!;
      const bl = bLo[k]!;
      let minHi = 0xffffffff;
      let minLo = 0xffffffff;
      for (let i = 0; i < sh.length; i++) {
        const xh = sh[i]!;
        const xl = sl[i]!;
        // low 64 bits of x * a: 32×32→64 of the low words from 16-bit halves, cross terms with imul
        const x0 = xl & 0xffff;
        const x1 = xl >>> 16;
        const hiLo = x1 * a0;
        const cross = ((x0 * a0) >>> 16) + (hiLo & 0xffff) + x0 * a1;
        let pl = Math.imul(xl, al) >>> 0;
        let ph = ((hiLo >>> 16) + (cross >>> 16) + x1 * a1 + Math.imul(xh, al) + Math.imul(xl, ah)) >>> 0;
        // + b, modulo 2^64
        const sumLo = pl + bl;
        pl = sumLo >>> 0;
        ph = (ph + bh + (sumLo >= 4294967296 ? 1 : 0)) >>> 0;
        // modulo 2^61 - 1: 2^61 ≡ 1, so v ≡ (v >> 61) + (v & (2^61 - 1)), then at most one subtraction
        let rl = pl + (ph >>> 29);
        let rh = ph & 0x1fffffff;
        if (rl >= 4294967296) {
          rl -= 4294967296;
          rh += 1;
        }
        if (rh > 0x1fffffff || (rh === 0x1fffffff && rl === 0xffffffff)) {
          // subtract 2^61 - 1: add 1, drop bit 61
          rl += 1;
          if (rl >= 4294967296) {
            rl -= 4294967296;
            rh += 1;
          }
          rh -= 0x20000000;
        }
        if (rh < minHi || (rh === minHi && rl < minLo)) {
          minHi = rh;
          minLo = rl;
        }
      }
      out[2 * k] = minHi;
      out[2 * k + 1] = minLo;
    }
    return out;
  }
}
