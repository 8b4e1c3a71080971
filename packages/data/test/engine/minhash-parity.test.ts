import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import xxhashWasm from "xxhash-wasm";
import { MinHashKernel } from "../../src/engine/dedup/minhash-kernel.js";
import { MinHasher, MinHashIndex, NumpyRandomState, SeededRandom } from "../../src/engine/index.js";
import { bigints, fixturePath, loadSample } from "./fixtures.js";

const docs = loadSample();
const toBig = (sig: Uint32Array): bigint[] => {
  const out: bigint[] = [];
  for (let k = 0; k < sig.length; k += 2) out.push((BigInt(sig[k]!) << 32n) | BigInt(sig[k + 1]!));
  return out;
};

// Signatures per hash function, computed once and shared by the tests below.
const sigCache = new Map<string, { sigs: (Uint32Array | null)[]; counts: number[] }>();
async function computed(hashFc: "xxhash" | "sha1"): Promise<{ sigs: (Uint32Array | null)[]; counts: number[] }> {
  let c = sigCache.get(hashFc);
  if (!c) {
    const mh = await MinHasher.create({ hash_fc: hashFc });
    const sh = docs.map((d) => mh.shingles(d.text));
    c = { sigs: sh.map((x) => (x.hi.length === 0 ? null : mh.signatureOf(x.hi, x.lo))), counts: sh.map((x) => x.count) };
    sigCache.set(hashFc, c);
  }
  return c;
}
async function signatures(hashFc: "xxhash" | "sha1"): Promise<(Uint32Array | null)[]> {
  return (await computed(hashFc)).sigs;
}

async function dedup(hashFc: "xxhash" | "sha1"): Promise<{ removed: string[]; clusters: string[] }> {
  const index = new MinHashIndex(14, 8);
  (await signatures(hashFc)).forEach((s, i) => {
    if (s) index.add(i, s);
  });
  const { removedBy, clusters } = index.clusters();
  return {
    removed: [...removedBy.keys()].map((i) => docs[i]!.id).sort(),
    clusters: clusters.map((c) => `${docs[c.kept]!.id} <= ${c.removed.map((i) => docs[i]!.id).sort().join(",")}`).sort(),
  };
}

function goldenClusters(file: string): string[] {
  return readFileSync(fixturePath(file), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { kept: string[]; removed: string[] })
    .map((c) => `${c.kept[0]} <= ${[...c.removed].sort().join(",")}`)
    .sort();
}

describe("MinHash parity with datatrove (default MinhashConfig)", () => {
  it("regenerates datatrove's 112 a/b permutation parameters from seed 1 (numpy RandomState)", () => {
    const raw = readFileSync(fixturePath("minhash_params.json"), "utf8");
    const a = bigints(raw.match(/"a": \[([^\]]*)\]/)![1]!);
    const b = bigints(raw.match(/"b": \[([^\]]*)\]/)![1]!);
    const rs = new NumpyRandomState(1);
    const M = (1n << 61n) - 1n;
    expect(rs.randintUint64(1n, M, 112)).toEqual(a);
    expect(rs.randintUint64(0n, M, 112)).toEqual(b);
  });

  it("computes every document's 14×8 signature and shingle count exactly as datatrove", async () => {
    const lines = readFileSync(fixturePath("golden_minhash_signatures.jsonl"), "utf8").trim().split("\n");
    const byId = new Map(docs.map((d, i) => [d.id, i]));
    const { sigs, counts } = await computed("xxhash");
    let exact = 0;
    for (const line of lines) {
      const id = (JSON.parse(line) as { id: string }).id;
      const n = Number(line.match(/"n_shingles": (\d+)/)![1]);
      const sig = sigs[byId.get(id)!]!;
      if (n === 0) {
        expect(sig, id).toBeNull();
        exact++;
        continue;
      }
      const want = bigints(line.slice(line.indexOf('"signature"')));
      expect(counts[byId.get(id)!], id).toBe(n);
      expect(toBig(sig!), id).toEqual(want);
      exact++;
    }
    expect(exact).toBe(589);
  });

  it("signature(text), hashed and permuted in one kernel pass without removing repeats, equals the signatures above", async () => {
    const mh = await MinHasher.create();
    const { sigs } = await computed("xxhash");
    docs.forEach((d, i) => expect(mh.signature(d.text), d.id).toEqual(sigs[i]));
  });

  it("the kernel's xxHash64 equals xxhash-wasm's at every length (32-byte stripes, 8-, 4- and 1-byte tails) and on multi-byte text", async () => {
    const xx = await xxhashWasm();
    const kernel = new MinHashKernel([1n], [0n]);
    const rng = new SeededRandom(5);
    const alphabet = [..."abcdefghijklmnopqrstuvwxyz0123456789.,;-_éüß€中文🙂"];
    for (let len = 1; len <= 200; len++) {
      const w = Array.from({ length: len }, () => alphabet[rng.int(alphabet.length)]).join("");
      const pair = kernel.shingleHashes([w], 1);
      const got = (BigInt(pair[1]!) << 32n) | BigInt(pair[0]!);
      expect(got, JSON.stringify(w)).toBe(xx.h64Raw(new TextEncoder().encode(w), 0n));
    }
    // a document far larger than the kernel's initial memory page
    const big = Array.from({ length: 200_000 }, (_, i) => `w${i % 977}`);
    const pairs = kernel.shingleHashes(big, 5);
    expect(pairs.length).toBe(2 * (big.length - 4));
    const last = (BigInt(pairs.at(-1)!) << 32n) | BigInt(pairs.at(-2)!);
    expect(last).toBe(xx.h64Raw(new TextEncoder().encode(big.slice(-5).join(" ")), 0n));
  });

  it("removes the same 29 documents in the same 19 clusters, with the same kept representative (xxhash)", async () => {
    const r = await dedup("xxhash");
    const want = readFileSync(fixturePath("golden_minhash_removed.txt"), "utf8").trim().split("\n").sort();
    expect(want).toHaveLength(29);
    expect(r.removed).toEqual(want);
    expect(r.clusters).toEqual(goldenClusters("golden_minhash_clusters.jsonl"));
  });

  it("matches FineWeb's sha1 hashing too (25 removed)", async () => {
    const r = await dedup("sha1");
    const want = readFileSync(fixturePath("golden_minhash_removed_sha1.txt"), "utf8").trim().split("\n").sort();
    expect(r.removed).toEqual(want);
    expect(r.clusters).toEqual(goldenClusters("golden_minhash_clusters_sha1.jsonl"));
  });
});

/** Two sets of random 64-bit shingle hashes with Jaccard exactly `inter / (2 * size - inter)`. */
function pairWithJaccard(rng: SeededRandom, size: number, inter: number): [Uint32Array, Uint32Array, Uint32Array, Uint32Array] {
  const total = 2 * size - inter;
  const hi = Uint32Array.from({ length: total }, () => rng.nextUint32());
  const lo = Uint32Array.from({ length: total }, () => rng.nextUint32());
  // a = [0, size), b = [size - inter, total)
  return [hi.subarray(0, size), lo.subarray(0, size), hi.subarray(size - inter), lo.subarray(size - inter)];
}

describe("MinHash LSH candidate probability", () => {
  const golden = JSON.parse(readFileSync(fixturePath("golden_minhash_probability.json"), "utf8")) as {
    name: string;
    input: { bands: number; rows: number; s: number[] };
    expected: { probability: number[] };
  }[];
  const g = golden.find((x) => x.name === "lsh_candidate_probability:b=14,r=8")!;

  it("1 − (1 − s^r)^b holds for the measured band-collision rate (b=14, r=8)", async () => {
    const mh = await MinHasher.create();
    const rng = new SeededRandom(7);
    const trials = 200;
    const size = 100;
    for (let k = 0; k < g.input.s.length; k++) {
      const s = g.input.s[k]!;
      // |A∩B| / |A∪B| = s with |A| = |B| = size  →  inter = 2·size·s / (1 + s)
      const inter = Math.round((2 * size * s) / (1 + s));
      const exactS = inter / (2 * size - inter);
      let hits = 0;
      for (let t = 0; t < trials; t++) {
        const [ah, al, bh, bl] = pairWithJaccard(rng, size, inter);
        const sa = mh.signatureOf(ah, al);
        const sb = mh.signatureOf(bh, bl);
        let collide = false;
        for (let band = 0; band < 14 && !collide; band++) {
          let eq = true;
          for (let w = band * 16; w < band * 16 + 16; w++) if (sa[w] !== sb[w]) eq = false;
          collide = eq;
        }
        if (collide) hits++;
      }
      const expected = 1 - (1 - exactS ** 8) ** 14;
      // The golden value is at the nominal s; the planted pair's s differs by rounding only.
      expect(Math.abs(expected - g.expected.probability[k]!)).toBeLessThan(0.03);
      const sd = Math.sqrt((expected * (1 - expected)) / trials);
      expect(Math.abs(hits / trials - expected), `s=${s}`).toBeLessThanOrEqual(4 * sd + 0.01);
    }
  });

  it("finds planted near-duplicates with precision and recall ≥ 0.95", async () => {
    const mh = await MinHasher.create();
    const rng = new SeededRandom(11);
    const vocab = Array.from({ length: 5000 }, (_, i) => `w${i.toString(36)}`);
    const texts: string[] = [];
    const truth = new Set<string>();
    for (let d = 0; d < 60; d++) {
      const words = Array.from({ length: 300 }, () => vocab[rng.int(vocab.length)]!);
      const base = texts.length;
      texts.push(words.join(" "));
      // near duplicate: 1 word in 100 replaced (5-gram Jaccard ≈ 0.9) → should be found
      const near = words.map((w) => (rng.next() < 0.01 ? vocab[rng.int(vocab.length)]! : w));
      texts.push(near.join(" "));
      truth.add(`${base}-${base + 1}`);
      // distant: 1 word in 8 replaced (Jaccard ≈ 0.35) → should not be found
      const far = words.map((w) => (rng.next() < 0.125 ? vocab[rng.int(vocab.length)]! : w));
      texts.push(far.join(" "));
    }
    const index = new MinHashIndex(14, 8);
    texts.forEach((t, i) => index.add(i, mh.signature(t)!));
    const { clusters } = index.clusters();
    const found = new Set<string>();
    for (const c of clusters) {
      const members = [c.kept, ...c.removed].sort((a, b) => a - b);
      for (let i = 0; i < members.length; i++) for (let j = i + 1; j < members.length; j++) found.add(`${members[i]}-${members[j]}`);
    }
    const tp = [...found].filter((p) => truth.has(p)).length;
    const precision = found.size === 0 ? 0 : tp / found.size;
    const recall = tp / truth.size;
    console.log(`planted near-duplicates: precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)}`);
    expect(precision).toBeGreaterThanOrEqual(0.95);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  });
});

describe("MinHash across shards", () => {
  it("signatures computed per shard and merged give the same global dedup as one pass", async () => {
    const sigs = await signatures("xxhash");
    const whole = new MinHashIndex(14, 8);
    const shardA = new MinHashIndex(14, 8);
    const shardB = new MinHashIndex(14, 8);
    const half = Math.floor(docs.length / 2);
    sigs.forEach((s, i) => {
      if (!s) return;
      whole.add(i, s);
      if (i < half) shardA.add(i, s);
      else shardB.add(i - half, s); // each shard numbers its own documents from 0
    });
    shardA.merge(shardB.serialize(), half);
    const a = whole.clusters();
    const b = shardA.clusters();
    expect(b.clusters).toEqual(a.clusters);
    expect([...b.removedBy.keys()].sort((x, y) => x - y)).toEqual([...a.removedBy.keys()].sort((x, y) => x - y));
    expect(a.removedBy.size).toBe(29);
  });
});
