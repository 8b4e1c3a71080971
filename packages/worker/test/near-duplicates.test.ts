import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GenerateDedup } from "@nexa/core";
import { estimatedJaccard, findNearDuplicates } from "../src/handlers/near-duplicates.js";

// The data engine's fixture: 589 documents and the removals datatrove's MinHash made on them.
const DIR = fileURLToPath(new URL("../../data/test/fixtures/datatrove/", import.meta.url));
const docs = readFileSync(DIR + "corpus_sample.jsonl", "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { id: string; text: string });
const goldenRemoved = readFileSync(DIR + "golden_minhash_removed.txt", "utf8").trim().split("\n").sort();

describe("generate's near-duplicate removal (data engine MinHash LSH)", () => {
  it("with threshold 0 removes exactly what datatrove's MinHash removes on the fixture corpus", async () => {
    const { removedBy, rejected } = await findNearDuplicates(docs.map((d) => d.text), GenerateDedup.parse({ threshold: 0 }));
    expect([...removedBy.keys()].map((i) => docs[i]!.id).sort()).toEqual(goldenRemoved);
    expect(rejected).toBe(0);
  });

  it("a threshold confirms each removal against the kept document's signature", async () => {
    const texts = docs.map((d) => d.text);
    const all = await findNearDuplicates(texts, GenerateDedup.parse({ threshold: 0 }));
    const strict = await findNearDuplicates(texts, GenerateDedup.parse({ threshold: 0.9 }));
    expect(strict.removedBy.size + strict.rejected).toBe(all.removedBy.size);
    expect(strict.rejected).toBeGreaterThan(0);
    for (const [r, k] of strict.removedBy) expect(all.removedBy.get(r)).toBe(k);
  });

  it("estimatedJaccard is the share of equal 64-bit values", () => {
    const a = Uint32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const b = Uint32Array.from([1, 2, 3, 0, 5, 6, 0, 8]);
    expect(estimatedJaccard(a, b)).toBe(0.5);
    expect(estimatedJaccard(a, a)).toBe(1);
  });
});
