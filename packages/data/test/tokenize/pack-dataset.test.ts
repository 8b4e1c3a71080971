import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { IGNORE_INDEX, loadTokenizer, packDataset, readNpy, RecordFormatter, tokenizeWorkerPath, type PackManifest } from "../../src/tokenize/index.js";
import { FIXTURES, readJsonl } from "./fixtures.js";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "nexa-pack-"));
const CHATML = FIXTURES + "chat/chatml";

/** A mixed SFT file: chat records from the fixture conversations and plain-text corpus docs. */
const input = join(tmp, "sft.jsonl");
const convs = readJsonl<{ id: string; messages: unknown[] }>("chat/conversations.jsonl");
const corpus = readJsonl<{ id: string; text: string }>("corpus.jsonl").slice(0, 60);
const records: unknown[] = [];
for (let i = 0; i < 60; i++) {
  records.push(convs[i % convs.length]);
  records.push({ id: corpus[i]!.id, text: corpus[i]!.text.slice(0, 200 + ((i * 397) % 3000)) });
}
writeFileSync(input, records.map((r) => JSON.stringify(r)).join("\n") + "\n");

async function expected(): Promise<{ ids: number[] }[]> {
  const f = new RecordFormatter(await loadTokenizer(CHATML));
  return records.map((r, i) => ({ ids: Array.from(f.format(r, `x:${i}`).ids) }));
}

/** Whether any src/tokenize/*.ts is newer than its compiled dist/tokenize/*.js. */
function distIsStale(): boolean {
  const src = join(ROOT, "packages/data/src/tokenize");
  return readdirSync(src)
    .filter((f) => f.endsWith(".ts"))
    .some((f) => {
      const js = join(ROOT, "packages/data/dist/tokenize", f.replace(/\.ts$/, ".js"));
      return !existsSync(js) || statSync(js).mtimeMs < statSync(join(src, f)).mtimeMs;
    });
}

/** Splits packed rows into documents by cu_seqlens. */
async function documents(dir: string): Promise<{ ids: number[]; labels: number[] }[]> {
  const ids = await readNpy(join(dir, "input_ids.npy"));
  const labels = await readNpy(join(dir, "labels.npy"));
  const cu = await readNpy(join(dir, "cu_seqlens.npy"));
  const off = await readNpy(join(dir, "cu_seqlens_offsets.npy"));
  const [n, len] = ids.shape as [number, number];
  const out: { ids: number[]; labels: number[] }[] = [];
  for (let i = 0; i < n; i++) {
    const b = Array.from(cu.data.subarray(Number(off.data[i]), Number(off.data[i + 1])), Number);
    for (let k = 0; k + 1 < b.length; k++) {
      out.push({
        ids: Array.from(ids.data.subarray(i * len + b[k]!, i * len + b[k + 1]!) as Int32Array),
        labels: Array.from(labels.data.subarray(i * len + b[k]!, i * len + b[k + 1]!) as Int32Array),
      });
    }
  }
  return out;
}

describe("packDataset", () => {
  let manifest: PackManifest;
  const out = join(tmp, "bfd");
  beforeAll(async () => {
    manifest = await packDataset({ inputs: [input], out, tokenizer: CHATML, seqLen: 512, overlong: "drop" });
  });

  it("writes the npy folder and a manifest", async () => {
    expect(readdirSync(out).sort()).toEqual(["cu_seqlens.npy", "cu_seqlens_offsets.npy", "input_ids.npy", "labels.npy", "manifest.json", "position_ids.npy"]);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as PackManifest;
    expect(m).toEqual(manifest);
    for (const f of ["input_ids", "labels", "position_ids"]) {
      const a = await readNpy(join(out, `${f}.npy`));
      expect(a.dtype).toBe("<i4");
      expect(a.shape).toEqual([m.sequences, 512]);
    }
    expect(m.strategy).toBe("bfd");
    expect(m.seq_len).toBe(512);
    expect(m.tokenizer.hash).toMatch(/^sha256:/);
    expect(m.sources[0]!.sha256).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(m.sources[0]!.lines).toBe(records.length);
    expect(m.documents).toBe(records.length);
    expect(m.efficiency).toBeGreaterThan(0.9);
  });

  it("round trip: the packed documents are exactly the formatted records that fit", async () => {
    const want = (await expected()).filter((d) => d.ids.length <= 512).map((d) => d.ids.join(",")).sort();
    const got = (await documents(out)).map((d) => d.ids.join(",")).sort();
    expect(got).toEqual(want);
    expect(manifest.documents_dropped).toBe(records.length - want.length);
  });

  it("greedy keeps the input order: concatenated documents equal the concatenated records", async () => {
    const dir = join(tmp, "greedy");
    await packDataset({ inputs: [input], out: dir, tokenizer: CHATML, seqLen: 256, strategy: "greedy" });
    const got = (await documents(dir)).flatMap((d) => d.ids);
    expect(got).toEqual((await expected()).flatMap((d) => d.ids));
  });

  it("2 worker threads write the same bytes as 1", async () => {
    // Tests run from sources; worker threads run the compiled module, so bring dist/ up to date first.
    if (distIsStale()) spawnSync("npx", ["tsc", "-b", "packages/data"], { cwd: ROOT, stdio: "ignore" });
    expect(distIsStale()).toBe(false);
    expect(tokenizeWorkerPath()).toBeDefined();
    const dir = join(tmp, "threads");
    const m = await packDataset({ inputs: [input], out: dir, tokenizer: CHATML, seqLen: 512, overlong: "drop", threads: 2, batchLines: 16 });
    expect({ ...m, created_at: "" }).toEqual({ ...manifest, created_at: "" });
    for (const f of ["input_ids.npy", "labels.npy", "position_ids.npy", "cu_seqlens.npy"]) {
      expect(readFileSync(join(dir, f)).equals(readFileSync(join(out, f)))).toBe(true);
    }
  });

  it("parquet: one row per sequence with the same arrays as the npy folder", async () => {
    const dir = join(tmp, "parquet");
    const m = await packDataset({ inputs: [input], out: dir, tokenizer: CHATML, seqLen: 512, overlong: "drop", outputFormat: "parquet" });
    expect(readdirSync(dir).sort()).toEqual(["manifest.json", "packed.parquet"]);
    expect({ ...m, created_at: "", files: {}, output_format: "npy" }).toEqual({ ...manifest, created_at: "", files: {} });
    const { parquetReadObjects } = await import("hyparquet");
    const buf = readFileSync(join(dir, "packed.parquet"));
    const rows = (await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) })) as Record<string, number[]>[];
    expect(rows.length).toBe(manifest.sequences);
    const ids = await readNpy(join(out, "input_ids.npy"));
    const labels = await readNpy(join(out, "labels.npy"));
    rows.forEach((r, i) => {
      expect(r.input_ids).toEqual(Array.from(ids.data.subarray(i * 512, (i + 1) * 512) as Int32Array));
      expect(r.labels).toEqual(Array.from(labels.data.subarray(i * 512, (i + 1) * 512) as Int32Array));
    });
  });

  it("errors name the record and the fix, and leave no partial files", async () => {
    const bad = join(tmp, "bad.jsonl");
    writeFileSync(bad, '{"text":"ok"}\n{"text": oops}\n');
    const dir = join(tmp, "bad-out");
    await expect(packDataset({ inputs: [bad], out: dir, tokenizer: "cl100k_base", seqLen: 64 })).rejects.toThrow(/bad\.jsonl:2: is not valid JSON.*Fix/);
    // the same from a worker thread (dist/ was brought up to date by the test above)
    await expect(packDataset({ inputs: [bad], out: dir, tokenizer: "cl100k_base", seqLen: 64, threads: 2 })).rejects.toThrow(/bad\.jsonl:2: is not valid JSON.*Fix/);
    expect(readdirSync(dir)).toEqual([]);
    writeFileSync(bad, JSON.stringify(convs[0]) + "\n");
    await expect(packDataset({ inputs: [bad], out: dir, tokenizer: CHATML, seqLen: 8 })).rejects.toThrow(/bad\.jsonl:1: --seq-len 8 is too small: the chat template alone takes \d+ tokens/);
    await expect(packDataset({ inputs: [join(tmp, "missing.jsonl")], out: dir, tokenizer: CHATML, seqLen: 64 })).rejects.toThrow(/cannot read input/);
  });

  it("labels: -100 on prompt tokens of chat records, trained on assistant turns", async () => {
    const docs = await documents(out);
    const chat = docs.filter((d) => d.ids[0] === 8192); // <|im_start|>
    expect(chat.length).toBeGreaterThan(0);
    for (const d of chat) {
      expect(d.labels.some((l) => l !== IGNORE_INDEX)).toBe(true);
      expect(d.labels.filter((l) => l === IGNORE_INDEX).length).toBeGreaterThan(5);
    }
  });

  it("numpy loads the folder (python test via NEXA_PYTHON)", (ctx) => {
    const py = process.env.NEXA_PYTHON;
    if (!py) {
      console.warn("NEXA_PYTHON not set: skipping the numpy check of the packed folder");
      ctx.skip();
      return;
    }
    const r = spawnSync(py, ["-m", "pytest", "-q", join(ROOT, "packages/data/test/python/test_packed_npy.py")], {
      env: { ...process.env, NEXA_PACKED_DIR: out },
      encoding: "utf8",
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 passed/);
  });
});

