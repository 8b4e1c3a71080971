import { describe, expect, it } from "vitest";
import { IGNORE_INDEX, SequencePacker, type FormattedDoc, type PackedSequence, type PackStrategy } from "../../src/tokenize/index.js";

/** Seeded PRNG for test data (independent of the packer's). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** SFT-like lengths: log-normal around ~350 tokens with a long tail, capped at `max`. */
function sftLengths(n: number, seed: number, max: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const z = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
    return Math.max(8, Math.min(max, Math.round(Math.exp(5.9 + 0.9 * z))));
  });
}

/** Doc k's token i is k*100000+i, so any piece tells which doc and where it came from; every 7th label masked. */
function makeDocs(lengths: number[]): FormattedDoc[] {
  return lengths.map((n, k) => {
    const ids = Int32Array.from({ length: n }, (_, i) => k * 100_000 + i);
    const labels = ids.map((v, i) => (i % 7 === 3 ? IGNORE_INDEX : v));
    return { ids, labels };
  });
}

function packAll(docs: FormattedDoc[], strategy: PackStrategy, seqLen: number, extra: { seed?: number; bufferSize?: number; overlong?: "split" | "drop" } = {}) {
  const packer = new SequencePacker({ seqLen, strategy, padId: 0, ...extra });
  const seqs: PackedSequence[] = [];
  for (const d of docs) seqs.push(...packer.push(d));
  seqs.push(...packer.finish());
  return { packer, seqs };
}

/** Checks invariants of every sequence (collecting violations) and rebuilds the documents from the pieces. */
function reconstruct(seqs: PackedSequence[], seqLen: number): Map<number, { ids: number[]; labels: number[] }> {
  const pieces = new Map<number, { start: number; ids: number[]; labels: number[] }[]>();
  const bad: string[] = [];
  seqs.forEach((s, n) => {
    if (s.inputIds.length !== seqLen || s.labels.length !== seqLen || s.positionIds.length !== seqLen) bad.push(`${n}: length`);
    const cu = Array.from(s.cuSeqlens);
    if (cu[0] !== 0) bad.push(`${n}: cu_seqlens[0]`);
    for (let k = 0; k + 1 < cu.length; k++) {
      const [a, b] = [cu[k]!, cu[k + 1]!];
      if (b <= a) bad.push(`${n}: empty segment`);
      // position ids restart at every boundary and count up inside a document
      for (let i = a; i < b; i++) if (s.positionIds[i] !== i - a) bad.push(`${n}: position ${i}`);
      if (s.labels[a] !== IGNORE_INDEX) bad.push(`${n}: first label of segment ${k}`);
      const ids = Array.from(s.inputIds.subarray(a, b));
      const doc = Math.floor(ids[0]! / 100_000);
      const list = pieces.get(doc) ?? [];
      list.push({ start: ids[0]! % 100_000, ids, labels: Array.from(s.labels.subarray(a, b)) });
      pieces.set(doc, list);
    }
    const real = cu[cu.length - 1]!;
    for (let i = real; i < seqLen; i++) {
      if (s.labels[i] !== IGNORE_INDEX || s.inputIds[i] !== 0 || s.positionIds[i] !== i - real) bad.push(`${n}: padding ${i}`);
    }
  });
  expect(bad.slice(0, 5)).toEqual([]);
  const out = new Map<number, { ids: number[]; labels: number[] }>();
  for (const [doc, list] of pieces) {
    list.sort((a, b) => a.start - b.start);
    out.set(doc, { ids: list.flatMap((p) => p.ids), labels: list.flatMap((p) => p.labels) });
  }
  return out;
}

describe.each(["bfd", "ffd", "greedy", "pad"] as const)("%s", (strategy) => {
  const seqLen = 1024;
  const lengths = sftLengths(600, 7, 3000); // some longer than seqLen: split
  const docs = makeDocs(lengths);

  it("round trip: documents rebuilt from the packed sequences equal the input", () => {
    const { seqs, packer } = packAll(docs, strategy, seqLen, { bufferSize: 128 });
    const rebuilt = reconstruct(seqs, seqLen);
    expect(rebuilt.size).toBe(docs.length);
    const wrong: number[] = [];
    docs.forEach((d, k) => {
      const r = rebuilt.get(k)!;
      if (r.ids.length !== d.ids.length || r.ids.some((v, i) => v !== d.ids[i])) wrong.push(k);
      // labels are the document's, except −100 on each piece's first token
      if (r.labels.some((l, i) => l !== IGNORE_INDEX && l !== d.labels[i])) wrong.push(k);
      if (r.labels.filter((l, i) => l !== d.labels[i]).length > Math.ceil(d.ids.length / seqLen) + 1) wrong.push(k);
    });
    expect(wrong).toEqual([]);
    const total = lengths.reduce((a, b) => a + b, 0);
    expect(packer.stats.tokens).toBe(total);
    expect(packer.stats.sequences).toBe(seqs.length);
    expect(packer.efficiency).toBeCloseTo(total / (seqs.length * seqLen), 12);
  });

  it("is deterministic for a seed", () => {
    const a = packAll(docs, strategy, seqLen, { seed: 3 }).seqs;
    const b = packAll(docs, strategy, seqLen, { seed: 3 }).seqs;
    expect(a.map((s) => s.inputIds.join(","))).toEqual(b.map((s) => s.inputIds.join(",")));
  });
});

describe("packing efficiency on an SFT length distribution (seq_len 4096)", () => {
  const lengths = sftLengths(5000, 11, 4096);
  const docs = makeDocs(lengths);
  const eff = Object.fromEntries((["bfd", "ffd", "greedy", "pad"] as const).map((s) => [s, packAll(docs, s, 4096).packer.efficiency]));

  it("prints the efficiencies", () => {
    console.log("packing efficiency, 5000 SFT-like docs, seq_len 4096:", JSON.stringify(eff));
    expect(eff.bfd).toBeGreaterThan(eff.pad!);
  });

  it("bfd and ffd reach ≥ 99% without splitting documents; pad is far lower", () => {
    expect(eff.bfd).toBeGreaterThanOrEqual(0.99);
    expect(eff.ffd).toBeGreaterThanOrEqual(0.99);
    expect(eff.greedy).toBeGreaterThanOrEqual(0.999);
    expect(eff.pad).toBeLessThan(0.2);
  });

  it("a bounded buffer costs little and emits sequences before the end", () => {
    const packer = new SequencePacker({ seqLen: 4096, strategy: "bfd", bufferSize: 1000 });
    let early = 0;
    for (const d of docs) early += packer.push(d).length;
    packer.finish();
    expect(early).toBeGreaterThan(0);
    expect(packer.efficiency).toBeGreaterThanOrEqual(0.985);
  });

  it("a different seed changes the order, not the contents", () => {
    const a = packAll(docs.slice(0, 800), "bfd", 4096, { seed: 1 }).seqs.map((s) => Array.from(s.inputIds).join(","));
    const b = packAll(docs.slice(0, 800), "bfd", 4096, { seed: 2 }).seqs.map((s) => Array.from(s.inputIds).join(","));
    expect(a).not.toEqual(b);
    expect([...a].sort()).toEqual([...b].sort());
  });
});

describe("overlong documents", () => {
  it("drop counts them and packs the rest", () => {
    const docs = makeDocs([100, 2000, 50, 4000]);
    const { packer, seqs } = packAll(docs, "bfd", 1024, { overlong: "drop" });
    expect(packer.stats.dropped).toBe(2);
    expect(packer.stats.tokens).toBe(150);
    expect(seqs.length).toBe(1);
  });
  it("split cuts them into seq_len pieces", () => {
    const { packer } = packAll(makeDocs([2500]), "pad", 1024);
    expect(packer.stats.split).toBe(1);
    expect(packer.stats.sequences).toBe(3);
  });
});
