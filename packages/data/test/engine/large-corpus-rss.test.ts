import { spawnSync } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// Slow: generates NEXA_RSS_GB (default 2) GB of JSONL and streams it through the full FineWeb
// pipeline (filters + MinHash) in a child process, asserting peak RSS under 1.5 GB.
// Run with NEXA_SLOW_TESTS=1 after building the package (the child uses dist/).
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
        const vocab = Array.from({ length: 20000 }, (_, i) => `w${i.toString(36)}`).concat(["the", "of", "and", "to", "with", "that"]);
        let i = 0;
        while (written < gb * 1e9) {
          const sentences: string[] = [];
          const n = 10 + Math.floor(rnd() * 60);
          for (let s = 0; s < n; s++) sentences.push(Array.from({ length: 12 }, () => vocab[Math.floor(rnd() * vocab.length)]).join(" ") + ".");
          const line = JSON.stringify({ id: `g${i++}`, text: sentences.join(rnd() < 0.5 ? " " : "\n") }) + "\n";
          written += line.length;
          if (!ws.write(line)) await new Promise<void>((r) => ws.once("drain", () => r()));
        }
        await new Promise<void>((r) => ws.end(() => r()));
        const script = `const E = await import(${JSON.stringify(dist)});
const r = await E.runAudit({ input: ${JSON.stringify(path)}, outDir: ${JSON.stringify(join(dir, "out"))}, config: { preset: "fineweb", threads: 2 } });
console.log(JSON.stringify({ docs: r.docs_in, kept: r.kept, rss: process.resourceUsage().maxRSS * 1024 }));`;
        const scriptPath = join(dir, "run.mjs");
        await writeFile(scriptPath, script);
        const child = spawnSync(process.execPath, [scriptPath], { encoding: "utf8", maxBuffer: 1 << 26, env: { ...process.env, NODE_OPTIONS: "" } });
        expect(child.status, child.stderr).toBe(0);
        const res = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as { docs: number; kept: number; rss: number };
        console.log(`${gb} GB: ${res.docs} docs, ${res.kept} kept, peak RSS ${(res.rss / 2 ** 20).toFixed(0)} MiB`);
        expect(res.docs).toBeGreaterThan(0);
        expect(res.rss).toBeLessThan(1.5e9);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    3 * 60 * 60 * 1000,
  );
});
