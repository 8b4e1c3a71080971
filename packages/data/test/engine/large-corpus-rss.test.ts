import { spawnSync } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadSample } from "./fixtures.js";

// Slow: generates NEXA_RSS_GB (default 2) GB of JSONL and streams it through the full FineWeb
// pipeline (filters + MinHash) in a child process, asserting peak RSS under 1.5 GB.
// Run with NEXA_SLOW_TESTS=1 after building the package (the child uses dist/).
// Words are drawn from the datatrove sample's running text (so at its word frequencies: stop words
// are common and most documents pass the filters and reach MinHash), and every 20th document is
// a near-copy of an earlier one, so MinHash has real clusters to find.
const dist = fileURLToPath(new URL("../../dist/engine/index.js", import.meta.url));
const slow = process.env.NEXA_SLOW_TESTS === "1";

describe.runIf(slow)("large corpus", () => {
  it(
    "streams a multi-GB corpus through the full pipeline with peak RSS under 1.5 GB",
    async () => {
      expect(existsSync(dist), "build @nexa/data first (npm run build)").toBe(true);
      const gb = Number(process.env.NEXA_RSS_GB ?? "2");
      const dir = await mkdtemp(join(tmpdir(), "nexa-rss-"));
      try {
        const path = join(dir, "big.jsonl");
        const ws = createWriteStream(path);
        let written = 0;
        let seed = 7;
        const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
        const running = loadSample().flatMap((d) => d.text.split(/\s+/).filter((w) => /^[A-Za-z]+$/.test(w)));
        const recent: string[][] = [];
        let i = 0;
        while (written < gb * 1e9) {
          let sentences: string[];
          if (i % 20 === 19 && recent.length > 0) {
            // near-copy: one sentence in ten replaced
            sentences = recent[Math.floor(rnd() * recent.length)]!.map((s) => (rnd() < 0.1 ? s.split(" ").reverse().join(" ") : s));
          } else {
            sentences = [];
            const n = 10 + Math.floor(rnd() * 60);
            for (let s = 0; s < n; s++) sentences.push(Array.from({ length: 12 }, () => running[Math.floor(rnd() * running.length)]).join(" ") + ".");
            if (recent.length >= 100) recent[Math.floor(rnd() * 100)] = sentences;
            else recent.push(sentences);
          }
          const line = JSON.stringify({ id: `g${i++}`, text: sentences.join("\n") }) + "\n";
          written += line.length;
          if (!ws.write(line)) await new Promise<void>((r) => ws.once("drain", () => r()));
        }
        await new Promise<void>((r) => ws.end(() => r()));
        const script = `const E = await import(${JSON.stringify(dist)});
const r = await E.runAudit({ input: ${JSON.stringify(path)}, outDir: ${JSON.stringify(join(dir, "out"))}, config: { preset: "fineweb", threads: 2 } });
const m = r.steps.find((s) => s.name === "minhash");
console.log(JSON.stringify({ docs: r.docs_in, mb: r.bytes_in / 1e6, kept: r.kept, wall_s: r.wall_ms / 1000, signatures: m.counts.signatures, spilled_runs: m.counts.spilled_runs, near_dups: m.drops.minhash_duplicate ?? 0, rss: process.resourceUsage().maxRSS * 1024 }));`;
        const scriptPath = join(dir, "run.mjs");
        await writeFile(scriptPath, script);
        const child = spawnSync(process.execPath, [scriptPath], { encoding: "utf8", maxBuffer: 1 << 26, env: { ...process.env, NODE_OPTIONS: "" } });
        expect(child.status, child.stderr).toBe(0);
        const res = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as { docs: number; mb: number; kept: number; wall_s: number; signatures: number; spilled_runs: number; near_dups: number; rss: number };
        console.log(
          `${gb} GB: ${res.docs} docs (${res.mb.toFixed(0)} MB of text), ${res.signatures} MinHash signatures in ${res.spilled_runs} spilled runs, ` +
            `${res.near_dups} near-duplicates, ${res.kept} kept; ${res.wall_s.toFixed(0)} s (${(res.mb / res.wall_s).toFixed(2)} MB/s, 2 threads); peak RSS ${(res.rss / 2 ** 20).toFixed(0)} MiB`,
        );
        expect(res.docs).toBeGreaterThan(0);
        expect(res.signatures).toBeGreaterThan(res.docs / 2);
        expect(res.near_dups).toBeGreaterThan(0);
        if (gb >= 1) expect(res.spilled_runs).toBeGreaterThan(0);
        expect(res.rss).toBeLessThan(1.5e9);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    3 * 60 * 60 * 1000,
  );
});
