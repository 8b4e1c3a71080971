import { mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { readRecords, RecordError, RecordWriter, runAudit } from "../../src/engine/index.js";

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), "nexa-io-"));
}

async function collect(path: string) {
  const out = [];
  for await (const item of readRecords(path)) out.push(item);
  return out;
}

describe("record I/O", () => {
  it("reads plain and gzip JSONL identically, with CRLF and blank lines", async () => {
    const dir = await tmp();
    const body = '{"id":"a","text":"héllo"}\r\n\n{"id":"b","text":"x"}\n';
    await writeFile(join(dir, "a.jsonl"), body);
    await writeFile(join(dir, "a.jsonl.gz"), gzipSync(Buffer.from(body)));
    const plain = await collect(join(dir, "a.jsonl"));
    const gz = await collect(join(dir, "a.jsonl.gz"));
    expect(plain.map((i) => (i.ok ? i.value.record : null))).toEqual([
      { id: "a", text: "héllo" },
      { id: "b", text: "x" },
    ]);
    expect(gz.map((i) => (i.ok ? i.value.record : null))).toEqual(plain.map((i) => (i.ok ? i.value.record : null)));
    expect(plain.map((i) => (i.ok ? i.value.line : 0))).toEqual([1, 3]);
  });

  it("round-trips records across the reader's and writer's 1 MiB chunks: lines longer than a chunk, multibyte characters on the boundaries, no final newline", async () => {
    const dir = await tmp();
    // Sizes around 1 MiB and several MiB, texts of 1-, 2-, 3- and 4-byte UTF-8 characters, so lines
    // and characters straddle every chunk boundary of both sides.
    const unit = ["a", "é", "€", "😀"];
    const records = Array.from({ length: 40 }, (_, i) => ({ id: i, text: unit[i % 4]!.repeat(i % 9 === 0 ? 700_000 + i * 37 : 20_000 + i * 4_099) }));
    const w = await RecordWriter.open(join(dir, "out.jsonl"));
    for (const r of records) await w.write(r);
    await w.close();
    const written = await readFile(join(dir, "out.jsonl"), "utf8");
    expect(written).toBe(records.map((r) => JSON.stringify(r) + "\n").join(""));
    await writeFile(join(dir, "in.jsonl"), written.slice(0, -1));
    const back = await collect(join(dir, "in.jsonl"));
    expect(back.map((i) => (i.ok ? i.value.record : i.error.message))).toEqual(records);
    expect(back.map((i) => (i.ok ? i.value.line : 0))).toEqual(records.map((_, k) => k + 1));
  });

  it("names file, line and the fix for bad JSON, invalid UTF-8 and a truncated gzip", async () => {
    const dir = await tmp();
    const bad = Buffer.concat([Buffer.from('{"id":1,"text":"ok"}\n{"id":2,text}\n'), Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a])]);
    await writeFile(join(dir, "bad.jsonl"), bad);
    const items = await collect(join(dir, "bad.jsonl"));
    expect(items[0]!.ok).toBe(true);
    const e1 = (items[1] as { error: RecordError }).error;
    expect(e1.kind).toBe("invalid_json");
    expect(e1.message).toContain(`bad.jsonl, line 2`);
    expect(e1.message).toMatch(/on-error skip/);
    const e2 = (items[2] as { error: RecordError }).error;
    expect(e2.kind).toBe("invalid_utf8");
    expect(e2.location.line).toBe(3);

    const full = gzipSync(Buffer.from(Array.from({ length: 2000 }, (_, i) => JSON.stringify({ id: i, text: `document ${i} `.repeat(20) })).join("\n")));
    await writeFile(join(dir, "cut.jsonl.gz"), full.subarray(0, Math.floor(full.length / 2)));
    const cut = await collect(join(dir, "cut.jsonl.gz"));
    const last = cut.at(-1)!;
    expect(last.ok).toBe(false);
    expect((last as { error: RecordError }).error.kind).toBe("truncated");
    expect((last as { error: RecordError }).error.message).toContain("cut.jsonl.gz");
  });

  it("writes and reads back Parquet; a truncated Parquet file is reported, not crashed on", async () => {
    const dir = await tmp();
    const w = await RecordWriter.open(join(dir, "d.parquet"));
    for (let i = 0; i < 25; i++) await w.write({ id: `d${i}`, text: `text number ${i}` });
    await w.close();
    const back = await collect(join(dir, "d.parquet"));
    expect(back.filter((i) => i.ok)).toHaveLength(25);
    expect(back[3]!.ok && back[3]!.value.record).toEqual({ id: "d3", text: "text number 3" });
    const bytes = await readFile(join(dir, "d.parquet"));
    await writeFile(join(dir, "cut.parquet"), bytes.subarray(0, bytes.length - 20));
    const cut = await collect(join(dir, "cut.parquet"));
    expect(cut).toHaveLength(1);
    expect((cut[0] as { error: RecordError }).error.kind).toBe("truncated");
  });
});

describe("audit error handling", () => {
  const corpus = ['{"id":"1","text":"fine text here"}', '{"id":"2","body":"no text field"}', "not json", '{"id":"4","text":42}', '{"id":"5","text":"more fine text"}'].join("\n");

  it("on_error fail stops at the first bad record, naming file, line and field, and leaves no outputs", async () => {
    const dir = await tmp();
    await writeFile(join(dir, "in.jsonl"), corpus);
    const out = join(dir, "out");
    await expect(runAudit({ input: join(dir, "in.jsonl"), outDir: out, config: { steps: ["length"] } })).rejects.toThrow(/in\.jsonl, line 2, field "text": the text field is missing\. Set --text-field/);
    expect((await readdir(out)).filter((f) => !f.startsWith("."))).toEqual([]);
  });

  it("on_error skip counts bad records per kind and goes on", async () => {
    const dir = await tmp();
    await writeFile(join(dir, "in.jsonl"), corpus);
    const r = await runAudit({ input: join(dir, "in.jsonl"), outDir: join(dir, "out"), config: { steps: ["length"], on_error: "skip" } });
    expect(r.docs_in).toBe(2);
    expect(r.kept).toBe(2);
    expect(r.skipped).toEqual({ missing_field: 1, invalid_json: 1, not_a_string: 1 });
    expect(r.skipped_examples[0]).toContain("line 2");
  });

  it("an aborted run leaves no kept.jsonl behind", async () => {
    const dir = await tmp();
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: i, text: `The cat number ${i} sat on the mat and looked at the dog. `.repeat(5) }));
    await writeFile(join(dir, "in.jsonl"), lines.join("\n"));
    const ac = new AbortController();
    const out = join(dir, "out");
    const p = runAudit({ input: join(dir, "in.jsonl"), outDir: out, config: { steps: ["gopher_quality", "minhash"] }, signal: ac.signal, onProgress: (pr) => pr.docs >= 1000 && ac.abort(new Error("canceled by test")) });
    await expect(p).rejects.toThrow(/canceled by test/);
    const files = await readdir(out);
    expect(files).not.toContain("kept.jsonl");
    expect(files).not.toContain("report.json");
    expect(files.filter((f) => f.includes(".tmp-") || f.startsWith(".audit-spool"))).toEqual([]);
  });
});
