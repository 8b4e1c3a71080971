/**
 * numpy's legacy `RandomState(seed)` (MT19937 seeded with `init_genrand`) and its
 * `randint(low, high, dtype=np.uint64)` (masked rejection sampling), enough to regenerate
 * datatrove's MinHash permutation parameters for any seed.
 */
export class NumpyRandomState {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be an integer in [0, 2**32 - 1], got ${seed}`);
    }
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, modulo 2^32
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** Next 32 random bits (genrand_int32). */
  nextUint32(): number {
    const mt = this.mt;
    if (this.index >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** `randint(low, high, size, dtype=np.uint64)`, high exclusive, for ranges wider than 32 bits. */
  randintUint64(low: bigint, high: bigint, size: number): bigint[] {
    const rng = high - 1n - low;
    if (rng <= 0xffffffffn) throw new RangeError("randintUint64 only implements ranges wider than 32 bits");
    let mask = rng;
    for (const s of [1n, 2n, 4n, 8n, 16n, 32n]) mask |= mask >> s;
    const out: bigint[] = [];
    for (let i = 0; i < size; i++) {
      let v: bigint;
      do {
        const hi = BigInt(this.nextUint32());
        const lo = BigInt(this.nextUint32());
        v = ((hi << 32n) | lo) & mask;
      } while (v > rng);
      out.push(low + v);
    }
    return out;
  }
}
