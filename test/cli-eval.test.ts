import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StandInServer } from "@nexa/llm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const CLI = join(import.meta.dirname, "../packages/cli/bin/nexa.js");
const built = existsSync(join(import.meta.dirname, "../packages/cli/dist/index.js"));

/** Runs the CLI without blocking the event loop (the stand-in answers in this process). */
function nexa(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!built)("nexa eval run (the evaluate contract for scripts)", () => {
  let standIn: StandInServer;
  let dir: string;
  beforeAll(async () => {
    // The model answers "Paris" to everything: exact match is right on exactly one of two items.
    standIn = await StandInServer.start({ model: "tiny", reply: () => "Paris" });
    dir = mkdtempSync(join(tmpdir(), "nexa-eval-"));
    writeFileSync(
      join(dir, "qa.jsonl"),
      [{ prompt: "Capital of France?", answer: "Paris" }, { prompt: "Capital of Italy?", answer: "Rome" }].map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
  });
  afterAll(async () => {
    await standIn.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("writes samples.jsonl and report.json with corpus and mean metrics", async () => {
    const out = join(dir, "out");
    const r = await nexa(["eval", "run", "--endpoint", standIn.url, "--model", "tiny", "--dataset", join(dir, "qa.jsonl"), "--metrics", "exact_match,f1,bleu,chrf", "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as { metrics: Record<string, number> };
    expect(report.metrics.exact_match).toBe(0.5);
    expect(report.metrics.f1).toBe(0.5);
    expect(report.metrics.bleu).toBeGreaterThanOrEqual(0);
    expect(report.metrics.bleu).toBeLessThanOrEqual(100);
    const samples = readFileSync(join(out, "samples.jsonl"), "utf8").trim().split("\n");
    expect(samples).toHaveLength(2);
  });

  test("an unreachable endpoint fails with the endpoint and model in the message", async () => {
    const r = await nexa(["eval", "run", "--endpoint", "http://127.0.0.1:9/v1", "--model", "ghost", "--dataset", join(dir, "qa.jsonl"), "--metrics", "exact_match", "--out", join(dir, "bad")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/127\.0\.0\.1:9/);
    expect(r.stderr).toMatch(/ghost/);
  }, 120_000);
});
