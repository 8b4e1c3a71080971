import { MINHASH_KERNEL_WASM } from "./minhash-kernel-wasm.js";

// The package compiles without the DOM library, which is where TypeScript declares WebAssembly.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface KernelExports {
  memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  shingles(bytes: number, len: number, words: number, n: number, starts: number, out: number): void;
  minhash(sh: number, count: number, ab: number, hashes: number, out: number): void;
}

let compiled: object | undefined;
const encoder = new TextEncoder();
const align8 = (x: number): number => (x + 7) & ~7;

/**
 * The WebAssembly half of {@link MinHasher} (`minhash-kernel.wat`): xxHash64 of each word n-gram
 * and the `(h * a + b) mod 2^64 mod (2^61 - 1)` permutations in native 64-bit arithmetic. Words
 * go in as one `" "`-joined UTF-8 string, so a document costs one encode and two calls. One
 * instance per thread; its memory grows to the largest document seen.
 */
export class MinHashKernel {
  private readonly k: KernelExports;
  private readonly hashes: number;
  /** First byte after the permutation parameters. */
  private readonly base: number;

  /** `a`, `b`: the permutation parameters (numpy `RandomState` draws, below 2^61). */
  constructor(a: readonly bigint[], b: readonly bigint[]) {
    // WebAssembly memory is little-endian; the typed-array views below read it as the host's order.
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("MinHash: big-endian hosts are not supported");
    compiled ??= new wasm.Module(Buffer.from(MINHASH_KERNEL_WASM, "base64"));
    this.k = new wasm.Instance(compiled, {}).exports as KernelExports;
    this.hashes = a.length;
    this.base = 16 * a.length;
    this.reserve(this.base);
    const ab = new BigUint64Array(this.k.memory.buffer, 0, 2 * a.length);
    for (let i = 0; i < a.length; i++) {
      ab[2 * i] = a[i]!;
      ab[2 * i + 1] = b[i]!;
    }
  }

  private reserve(bytes: number): void {
    const have = this.k.memory.buffer.byteLength;
    if (bytes > have) this.k.memory.grow(Math.ceil((bytes - have) / 65536));
  }

  /**
   * Hash every n-gram of `words` (each free of spaces, as the tokenizer's words are) into kernel
   * memory; returns where the `count` i64 hashes start and where free memory begins after them.
   */
  private hashShingles(words: readonly string[], n: number, count: number): { sh: number; free: number } {
    const joined = words.join(" ");
    const bytesAt = this.base;
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    const startsAt = align8(bytesAt + 3 * joined.length);
    const sh = align8(startsAt + 4 * (words.length + 1));
    const free = sh + 8 * count;
    this.reserve(free + 8 * this.hashes);
    const { written } = encoder.encodeInto(joined, new Uint8Array(this.k.memory.buffer, bytesAt, 3 * joined.length));
    this.k.shingles(bytesAt, written, words.length, n, startsAt, sh);
    return { sh, free };
  }

  /** xxHash64 of each of the `words.length - n + 1` n-grams, as (low, high) 32-bit word pairs. */
  shingleHashes(words: readonly string[], n: number): Uint32Array {
    const count = Math.max(0, words.length - n + 1);
    if (count === 0) return new Uint32Array(0);
    const { sh } = this.hashShingles(words, n, count);
    return new Uint32Array(this.k.memory.buffer, sh, 2 * count).slice();
  }

  /** Signature (interleaved [hi, lo] minima) of the n-grams of `words`, or null without one. */
  signature(words: readonly string[], n: number): Uint32Array | null {
    const count = Math.max(0, words.length - n + 1);
    if (count === 0) return null;
    const { sh, free } = this.hashShingles(words, n, count);
    return this.minima(sh, count, free);
  }

  /** Signature of given 64-bit hashes, as (hi, lo) 32-bit halves (at least one). */
  signatureOf(hi: Uint32Array, lo: Uint32Array): Uint32Array {
    const sh = this.base;
    const free = sh + 8 * hi.length;
    this.reserve(free + 8 * this.hashes);
    const view = new Uint32Array(this.k.memory.buffer, sh, 2 * hi.length);
    for (let i = 0; i < hi.length; i++) {
      view[2 * i] = lo[i]!;
      view[2 * i + 1] = hi[i]!;
    }
    return this.minima(sh, hi.length, free);
  }

  private minima(sh: number, count: number, out: number): Uint32Array {
    this.k.minhash(sh, count, 0, this.hashes, out);
    return new Uint32Array(this.k.memory.buffer, out, 2 * this.hashes).slice();
  }
}
