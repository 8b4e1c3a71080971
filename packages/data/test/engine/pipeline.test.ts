import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseStepList, resolveSteps, PipelineConfig, runAudit } from "../../src/engine/index.js";
import { workerScript } from "../../src/engine/pipeline/doc-executor.js";
import { fixturePath, readJsonl } from "./fixtures.js";

const sample = fixturePath("corpus_sample.jsonl");
const golden = new Map(readJsonl(fixturePath("golden_filters.jsonl")).map((g) => [g.id as string, g]));
const minhashRemoved = new Set((await readFile(fixturePath("golden_minhash_removed.txt"), "utf8")).trim().split("\n"));

describe("audit pipeline", () => {
  it("--steps runs only the named steps, in order; removed records carry filter and datatrove's reason", async () => {
    const out = await mkdtemp(join(tmpdir(), "nexa-audit-"));
    const r = await runAudit({ input: sample, outDir: out, config: { steps: parseStepList("gopher_quality,fineweb") } });
    expect(r.steps.map((s) => s.name)).toEqual(["gopher_quality", "fineweb"]);
    const removed = readJsonl(join(out, "removed.jsonl"));
    const kept = readJsonl(join(out, "kept.jsonl"));
    expect(removed.length + kept.length).toBe(589);
    for (const rec of removed) {
      const g = golden.get(rec.id as string)!;
      if (rec.filter === "gopher_quality") expect(rec.reason).toBe(g.gopher_quality);
      else {
        expect(rec.filter).toBe("fineweb");
        expect(g.gopher_quality).toBe(true);
        expect(rec.reason).toBe(g.fineweb);
      }
      expect(typeof rec.text).toBe("string");
    }
    const report = JSON.parse(await readFile(join(out, "report.json"), "utf8"));
    expect(report.steps[0].drops).toEqual({ gopher_below_alpha_threshold: 349, gopher_short_doc: 122, gopher_below_avg_threshold: 2, gopher_too_many_hashes: 1 });
  });

  it("the FineWeb preset without MinHash equals datatrove's fineweb_chain; with MinHash it removes datatrove's near-duplicates among survivors", async () => {
    const out = await mkdtemp(join(tmpdir(), "nexa-audit-"));
    await runAudit({ input: sample, outDir: out, config: { preset: "fineweb" } });
    const removed = new Map(readJsonl(join(out, "removed.jsonl")).map((r) => [r.id as string, r]));
    let agree = 0;
    for (const [id, g] of golden) {
      const r = removed.get(id);
      const chain = g.fineweb_chain === true ? undefined : g.fineweb_chain;
      const got = r && r.filter !== "minhash" ? `${String(r.filter)}:${String(r.reason)}` : undefined;
      if (got === chain) agree++;
      if (r?.filter === "minhash") {
        expect(chain).toBeUndefined();
        expect(r.reason).toBe("minhash_duplicate");
        expect(typeof r.duplicate_of).toBe("string");
      }
    }
    expect(agree).toBe(589);
    // C4's edited text reaches kept.jsonl
    for (const k of readJsonl(join(out, "kept.jsonl"))) {
      const g = golden.get(k.id as string)!;
      if (typeof g.c4_text === "string") expect(k.text).toBe(g.c4_text);
    }
  });

  it("MinHash alone removes exactly datatrove's 29 documents", async () => {
    const out = await mkdtemp(join(tmpdir(), "nexa-audit-"));
    const r = await runAudit({ input: sample, outDir: out, config: { steps: ["minhash"] } });
    const removed = readJsonl(join(out, "removed.jsonl")).map((x) => x.id as string);
    expect(new Set(removed)).toEqual(minhashRemoved);
    expect(r.steps[0]!.counts.clusters).toBe(19);
    // The second pass reads the id spool in step with the input and never to its end: it must
    // still close it (it held the deleted spool's file open until garbage collection).
    if (existsSync("/proc/self/fd")) {
      const open = readdirSync("/proc/self/fd").flatMap((fd) => {
        try {
          return [readlinkSync(`/proc/self/fd/${fd}`)];
        } catch {
          return [];
        }
      });
      expect(open.filter((l) => l.startsWith(out))).toEqual([]);
    }
  });

  it.runIf(workerScript() !== null)("2 and 3 threads (1 and 2 workers beside the main thread) give byte-identical outputs to 1 thread", async () => {
    const steps = ["gopher_repetition", "exact_dedup", "c4", "pii", "minhash"] as const;
    const a = await mkdtemp(join(tmpdir(), "nexa-audit-"));
    const b = await mkdtemp(join(tmpdir(), "nexa-audit-"));
    // The first 250 documents hold the git release-note and copyright duplicate clusters.
    const input = join(a, "in.jsonl");
    await writeFile(input, (await readFile(sample, "utf8")).split("\n").slice(0, 250).join("\n"));
    await runAudit({ input, outDir: a, config: { steps: [...steps], threads: 1 } });
    const rb = await runAudit({ input, outDir: b, config: { steps: [...steps], threads: 2 } });
    expect(rb.threads).toBe(2);
    expect(rb.removed).toBeGreaterThan(0);
    expect(rb.steps.find((s) => s.name === "minhash")!.drops.minhash_duplicate).toBeGreaterThan(0);
    expect(await readFile(join(b, "kept.jsonl"), "utf8")).toBe(await readFile(join(a, "kept.jsonl"), "utf8"));
    expect(await readFile(join(b, "removed.jsonl"), "utf8")).toBe(await readFile(join(a, "removed.jsonl"), "utf8"));
    const c = await mkdtemp(join(tmpdir(), "nexa-audit-"));
    const rc = await runAudit({ input, outDir: c, config: { steps: [...steps], threads: 3 } });
    expect(rc.removed).toBe(rb.removed);
    expect(await readFile(join(c, "kept.jsonl"), "utf8")).toBe(await readFile(join(a, "kept.jsonl"), "utf8"));
    expect(await readFile(join(c, "removed.jsonl"), "utf8")).toBe(await readFile(join(a, "removed.jsonl"), "utf8"));
  });

  it("exact dedup keeps the first of identical texts; regex and length rules drop with their reasons", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nexa-audit-"));
    const recs = [
      { id: "a", text: "Hello   World, this is a test." },
      { id: "b", text: "hello world, this is a test." },
      { id: "c", text: "short" },
      { id: "d", text: "Buy cheap pills now, a long enough text" },
    ];
    await writeFile(join(dir, "in.jsonl"), recs.map((r) => JSON.stringify(r)).join("\n"));
    const config: PipelineConfig = {
      steps: ["exact_dedup", { type: "length", options: { min_words: 2 } }, { type: "regex", name: "spam", options: { rules: [{ name: "pills", pattern: "cheap pills", flags: "i" }] } }],
    };
    await runAudit({ input: join(dir, "in.jsonl"), outDir: join(dir, "out"), config });
    const removed = readJsonl(join(dir, "out", "removed.jsonl")).map((r) => [r.id, r.filter, r.reason]);
    expect(removed).toEqual([
      ["b", "exact_dedup", "exact_duplicate"],
      ["c", "length", "too_few_words"],
      ["d", "spam", "regex:pills"],
    ]);
  });

  it("rejects a bad step option with the step and the field named", async () => {
    expect(() => parseStepList("gopher_quality,nope")).toThrow(/unknown step "nope"/);
    const cfg = PipelineConfig.parse({ steps: [{ type: "gopher_quality", options: { min_doc_words: "ten" } }] });
    expect(resolveSteps(cfg)[0]!.options).toEqual({ min_doc_words: "ten" });
    const dir = await mkdtemp(join(tmpdir(), "nexa-audit-"));
    await expect(runAudit({ input: sample, outDir: dir, config: cfg })).rejects.toThrow(/pipeline step "gopher_quality": option min_doc_words/);
  });
});
