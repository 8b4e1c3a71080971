import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MinHasher, MinHashIndex, type MinHashResult, runAudit, SeededRandom, SpillingMinHashIndex } from "../../src/engine/index.js";
import { fixturePath, loadSample } from "./fixtures.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "nexa-spill-"));
  dirs.push(d);
  return d;
}

/** Bytes of band records that make `docs` documents fill one run (14 bands × 17 words × 4 bytes each). */
const runOf = (docs: number, bands = 14, rows = 8): number => docs * bands * (2 * rows + 1) * 4;

function plain(r: MinHashResult): { removedBy: [number, number][]; clusters: MinHashResult["clusters"] } {
  return { removedBy: [...r.removedBy].sort((a, b) => a[0] - b[0]), clusters: r.clusters };
}

describe("SpillingMinHashIndex (signatures spilled to sorted band runs on disk)", () => {
  it("gives the in-memory index's clusters on the datatrove sample when every 50 documents spill a run", async () => {
    const mh = await MinHasher.create();
    const docs = loadSample();
    const mem = new MinHashIndex(14, 8);
    const dir = join(await tempDir(), "runs");
    const disk = new SpillingMinHashIndex(14, 8, { dir, memoryBytes: runOf(50) });
    docs.forEach((d, i) => {
      const sig = mh.signature(d.text);
      if (sig === null) return;
      mem.add(i, sig);
      disk.add(i, sig);
    });
    expect(disk.size).toBe(mem.size);
    expect(disk.runs).toHaveLength(Math.floor(mem.size / 50));
    expect(readdirSync(dir)).toHaveLength(disk.runs.length);
    const want = mem.clusters();
    expect(want.removedBy.size).toBe(29);
    expect(plain(disk.clusters())).toEqual(plain(want));
    disk.dispose();
    expect(existsSync(dir)).toBe(false);
  });

  it("matches the in-memory index under heavy band collisions, shuffled indices and any run size", async () => {
    // Each band takes one of three values: most documents collide with many others in several
    // bands, so the union order (band order, then index order within equal bands) decides roots.
    const rng = new SeededRandom(3);
    const n = 300;
    const pool = Array.from({ length: 14 * 3 }, () => Uint32Array.from({ length: 16 }, () => rng.nextUint32()));
    const sigs = Array.from({ length: n }, () => {
      const sig = new Uint32Array(14 * 16);
      for (let b = 0; b < 14; b++) {
        // a third of the bands unique to the document, the rest from the pool
        if (rng.next() < 0.33) for (let w = 0; w < 16; w++) sig[b * 16 + w] = rng.nextUint32();
        else sig.set(pool[b * 3 + rng.int(3)]!, b * 16);
      }
      return sig;
    });
    const indices = Array.from({ length: n }, (_, i) => i * 3 + 1);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [indices[i], indices[j]] = [indices[j]!, indices[i]!];
    }
    const mem = new MinHashIndex(14, 8);
    sigs.forEach((s, i) => mem.add(indices[i]!, s));
    const want = plain(mem.clusters());
    expect(want.clusters.length).toBeGreaterThan(0);
    for (const perRun of [1, 7, 64, 299, 300, 5000]) {
      const disk = new SpillingMinHashIndex(14, 8, { dir: join(await tempDir(), `r${perRun}`), memoryBytes: runOf(perRun) });
      sigs.forEach((s, i) => disk.add(indices[i]!, s));
      expect(disk.runs, `${perRun} per run`).toHaveLength(Math.floor(n / perRun));
      expect(plain(disk.clusters()), `${perRun} per run`).toEqual(want);
      disk.dispose();
    }
  });

  it("runAudit with a tiny memory_mb spills, removes datatrove's 29 documents and leaves no temporary files", async () => {
    const out = await tempDir();
    const r = await runAudit({ input: fixturePath("corpus_sample.jsonl"), outDir: out, config: { steps: [{ type: "minhash", options: { memory_mb: runOf(40) / 2 ** 20 } }] } });
    const m = r.steps[0]!;
    expect(m.counts.spilled_runs).toBeGreaterThan(10);
    expect(m.drops.minhash_duplicate).toBe(29);
    const want = (await readFile(fixturePath("golden_minhash_removed.txt"), "utf8")).trim().split("\n").sort();
    const removed = (await readFile(join(out, "removed.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; duplicate_of: string });
    expect(removed.map((x) => x.id).sort()).toEqual(want);
    expect(removed.every((x) => typeof x.duplicate_of === "string" && x.duplicate_of !== x.id)).toBe(true);
    expect(readdirSync(out).sort()).toEqual(["kept.jsonl", "removed.jsonl", "report.json"]);
  });

  it("rejects a bad memory_mb naming the option", async () => {
    const out = await tempDir();
    await expect(runAudit({ input: fixturePath("corpus_sample.jsonl"), outDir: out, config: { steps: [{ type: "minhash", options: { memory_mb: 0 } }] } })).rejects.toThrow(/memory_mb/);
  });
});
