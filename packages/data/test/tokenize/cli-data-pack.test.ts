import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FIXTURES } from "./fixtures.js";

// The CLI imports "@nexa/data"; point it at this folder's public surface only, so this test does not depend on
// the rest of the package.
vi.mock("@nexa/data", () => import("../../src/tokenize/index.js"));
const { registerPackCommands } = await import("../../../cli/src/commands/data-pack.js");

const tmp = mkdtempSync(join(tmpdir(), "nexa-cli-pack-"));
const input = join(tmp, "sft.jsonl");
writeFileSync(input, readFileSync(FIXTURES + "chat/conversations.jsonl", "utf8") + '{"text":"plain text document"}\n');

async function run(...argv: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const so = vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
  const se = vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
  process.exitCode = undefined;
  try {
    const program = new Command("nexa").exitOverride();
    registerPackCommands(program.command("data"));
    await program.parseAsync(["node", "nexa", "data", ...argv]);
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
  const code = typeof process.exitCode === "number" ? process.exitCode : 0;
  process.exitCode = undefined;
  return { stdout: out.join(""), stderr: err.join(""), code };
}

afterEach(() => {
  process.exitCode = undefined;
});

describe("nexa data pack|tokenize|inspect", () => {
  it("pack --json writes the npy folder and prints the manifest", async () => {
    const out = join(tmp, "packed");
    const r = await run("pack", input, "--tokenizer", FIXTURES + "chat/chatml", "--seq-len", "128", "--strategy", "ffd", "--out", out, "--json");
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout) as { sequences: number; strategy: string; seq_len: number; efficiency: number; tokens: number };
    expect(m).toMatchObject({ strategy: "ffd", seq_len: 128 });
    expect(m.efficiency).toBeCloseTo(m.tokens / (m.sequences * 128), 12);
    for (const f of ["input_ids.npy", "labels.npy", "position_ids.npy", "manifest.json"]) expect(existsSync(join(out, f))).toBe(true);

    const ins = await run("inspect", out, "--json");
    expect(ins.code, ins.stderr).toBe(0);
    const seqs = JSON.parse(ins.stdout) as { documents: { runs: { trained: boolean; text: string }[] }[] }[];
    const text = seqs[0]!.documents.flatMap((d) => d.runs).filter((r) => r.trained).map((r) => r.text).join("");
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain("<|im_start|>user");
    const plain = await run("inspect", out);
    expect(plain.stdout).toMatch(/sequence 0: \d+ documents, \d+ padding/);
    expect(plain.stdout).toContain("⟦");
  });

  it("tokenize --out writes ids per record", async () => {
    const out = join(tmp, "ids.jsonl");
    const r = await run("tokenize", input, "--tokenizer", "cl100k_base", "--chat-template", "chatml", "--out", out, "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ records: 6 });
    const last = JSON.parse(readFileSync(out, "utf8").trim().split("\n").pop()!) as { input_ids: number[] };
    // Python tiktoken: encode_ordinary("plain text document") == [21435, 1495, 2246]; then <|endoftext|>
    expect(last.input_ids).toEqual([21435, 1495, 2246, 100257]);
  });

  it("bad input: a clear error and exit code 2", async () => {
    const r = await run("pack", input, "--tokenizer", "cl100k_base", "--seq-len", "128", "--out", join(tmp, "x"));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/sft\.jsonl:1 \(id c0\): is a chat record but tokenizer cl100k_base has no chat_template\. Fix: pass --chat-template chatml/);
    const i = await run("inspect", join(tmp, "nowhere"));
    expect(i.code).toBe(2);
    expect(i.stderr).toMatch(/has no manifest\.json/);
  });
});
