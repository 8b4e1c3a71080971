import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { NearDuplicateIndex, jaccard, shingles } from "../src/index.js";

interface Case {
  name: string;
  kind: string;
  input: { doc_a: string; doc_b: string; k: number };
  expected: { whitespace: { jaccard: number; size_a: number; size_b: number; intersection: number } };
}
const cases = (JSON.parse(readFileSync(new URL("./fixtures/minhash.json", import.meta.url), "utf8")) as Case[]).filter((c) => c.kind === "shingle_jaccard");

describe("word 5-gram Jaccard (golden minhash.json, whitespace tokenisation)", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const a = shingles(c.input.doc_a, c.input.k);
    const b = shingles(c.input.doc_b, c.input.k);
    expect([a.size, b.size]).toEqual([c.expected.whitespace.size_a, c.expected.whitespace.size_b]);
    expect(jaccard(a, b)).toBe(c.expected.whitespace.jaccard);
  });

  it("NearDuplicateIndex drops a text at or above the threshold and keeps one below", () => {
    const idx = new NearDuplicateIndex(0.5);
    for (const c of cases) {
      const fresh = new NearDuplicateIndex(c.expected.whitespace.jaccard);
      expect(fresh.add(c.input.doc_a)).toBe(true);
      // Exactly at the threshold counts as a duplicate (unless there is no overlap at all).
      expect(fresh.add(c.input.doc_b)).toBe(c.expected.whitespace.jaccard === 0);
    }
    expect(idx.add("a b c")).toBe(true);
    expect(idx.add(" a  b c ")).toBe(false);
  });
});
