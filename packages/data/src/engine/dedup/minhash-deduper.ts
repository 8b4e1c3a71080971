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
});
export type MinHashOptions = z.input<typeof MinHashOptions>;

type Xxhash = Awaited<ReturnType<typeof xxhashWasm>>;
let xxhashPromise: Promise<Xxhash> | undefined;

/** The 64-bit hash of a shingle as [high 32 bits, low 32 bits]. */
type ShingleHasher = (shingle: string) => [number, number];

/**
 * datatrove's MinHash signatures: shingles are word n-grams (spaCy English words of
 * `simplify_text(text)`, joined by spaces) hashed to 64 bits; each of `num_buckets *
 * hashes_per_bucket` permutations is `(h * a + b) mod 2^64 mod (2^61 - 1)` — numpy's uint64
 * product wraps before the modulo, and so does this one — and the signature keeps each minimum.
 */
export class MinHasher {
  readonly options: z.output<typeof MinHashOptions>;
  readonly numHashes: number;
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
      const enc = new TextEncoder();
      hasher = (s) => {
        const h = xx.h64Raw(enc.encode(s), 0n);
        return [Number(h >> 32n), Number(h & 0xffffffffn)];
      };
    } else {
      hasher = (s) => {
        const d = createHash("sha1").update(s, "utf8").digest();
        return [d.readUInt32LE(4), d.readUInt32LE(0)];
      };
    }
    return new MinHasher(o, hasher, tokenizer);
  }

  /** Shingle hashes of a text (deduplicated: the minimum over a set equals that over the list) and their count with repeats. */
  shingles(text: string): { hi: Uint32Array; lo: Uint32Array; count: number } {
    const n = this.options.n_grams;
    const words = this.tokenizer.words(simplifyText(text));
    const count = Math.max(0, words.length - n + 1);
    const seen = new Set<string>();
    const hi: number[] = [];
    const lo: number[] = [];
    for (let i = 0; i < count; i++) {
      let s = words[i]!;
      for (let j = 1; j < n; j++) s += " " + words[i + j]!;
      if (seen.has(s)) continue;
      seen.add(s);
      const [h, l] = this.hasher(s);
      hi.push(h);
      lo.push(l);
    }
    return { hi: Uint32Array.from(hi), lo: Uint32Array.from(lo), count };
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
        // low 64 bits of x * a
        const x0 = xl & 0xffff;
        const x1 = xl >>> 16;
        const mid = x0 * a1 + x1 * a0;
        const loFull = x0 * a0 + (mid % 65536) * 65536;
        const carry = loFull >= 4294967296 ? 1 : 0;
        let pl = loFull >>> 0;
        let ph = (x1 * a1 + Math.floor(mid / 65536) + carry + Math.imul(xh, al) + Math.imul(xl, ah)) >>> 0;
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
