import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BloomFilter, Decontaminator, luhnValid, PiiScanner, shardDataset, shuffleDataset, splitDataset } from "../../src/engine/index.js";
import { readJsonl } from "./fixtures.js";

describe("PII", () => {
  const scanner = new PiiScanner();
  it("finds and redacts e-mail, phone, IPv4, IPv6, Luhn-valid cards and API keys", () => {
    const text =
      "Mail jane.doe@example.org or call +1 415-555-0132. Server 192.168.10.7 and fe80::1ff:fe23:4567:890a. " +
      "Card 4111 1111 1111 1111, not 4111 1111 1111 1112. Key AKIAIOSFODNN7EXAMPLE and ghp_" + "a".repeat(36) + ".";
    const r = scanner.redact(text);
    expect(r.counts).toEqual({ email: 1, phone: 1, ipv4: 1, ipv6: 1, credit_card: 1, secret: 2 });
    expect(r.text).toContain("Mail <EMAIL> or call <PHONE>.");
    expect(r.text).toContain("Server <IPV4> and <IPV6>.");
    expect(r.text).toContain("Card <CREDIT_CARD>, not 4111 1111 1111 1112.");
    expect(r.text).toContain("Key <SECRET> and <SECRET>.");
  });
  it("leaves ordinary numbers, versions and times alone", () => {
    expect(scanner.scan("version 1.2.3, at 10:30, in 2024, page 12-14, 3.14159")).toEqual([]);
  });
  it("checks Luhn", () => {
    expect(luhnValid("4111111111111111")).toBe(true);
    expect(luhnValid("4111111111111112")).toBe(false);
  });
});

describe("Bloom filter", () => {
  it("is sized like Dolma's (m = -n ln p / ln² 2, k = m/n ln 2), has no false negatives and about its false-positive rate", () => {
    const b = new BloomFilter(10_000, 0.01);
    expect(b.bits).toBe(Math.ceil((-10_000 * Math.log(0.01)) / Math.LN2 ** 2));
    expect(b.hashes).toBe(7);
    for (let i = 0; i < 10_000; i++) b.add(`url-${i}`);
    for (let i = 0; i < 10_000; i++) expect(b.has(`url-${i}`)).toBe(true);
    let fp = 0;
    for (let i = 0; i < 20_000; i++) if (b.has(`other-${i}`)) fp++;
    expect(fp / 20_000).toBeLessThan(0.02);
  });
});

describe("decontamination", () => {
  it("flags documents sharing a 13-gram with the eval set, after normalisation", () => {
    const d = new Decontaminator(13);
    d.addEvalText("The quick brown fox jumps over the lazy dog while the farmer watches from the fence.");
    expect(d.findOverlap("Intro. THE QUICK brown fox jumps over the lazy dog, while the farmer watches from afar")).toBeDefined();
    expect(d.findOverlap("The quick brown fox naps under the lazy dog while nobody watches anything at all")).toBeUndefined();
  });
});

describe("shuffle / split / shard", () => {
  async function corpus(n: number): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "nexa-ops-"));
    await writeFile(join(dir, "in.jsonl"), Array.from({ length: n }, (_, i) => JSON.stringify({ id: `doc-${i}`, text: `t${i}` })).join("\n"));
    return dir;
  }
  it("shuffle is a seeded permutation, identical across runs, different across seeds, also with many buckets", async () => {
    const dir = await corpus(500);
    await shuffleDataset(join(dir, "in.jsonl"), join(dir, "a.jsonl"), 42, { bucketBytes: 2000 });
    await shuffleDataset(join(dir, "in.jsonl"), join(dir, "b.jsonl"), 42, { bucketBytes: 2000 });
    await shuffleDataset(join(dir, "in.jsonl"), join(dir, "c.jsonl"), 43, { bucketBytes: 2000 });
    const a = readJsonl(join(dir, "a.jsonl")).map((r) => r.id);
    expect(a).toEqual(readJsonl(join(dir, "b.jsonl")).map((r) => r.id));
    expect(a).not.toEqual(readJsonl(join(dir, "c.jsonl")).map((r) => r.id));
    expect([...a].sort()).toEqual(Array.from({ length: 500 }, (_, i) => `doc-${i}`).sort());
    expect(a.slice(0, 20)).not.toEqual(Array.from({ length: 20 }, (_, i) => `doc-${i}`));
  });
  it("split puts each id in the same split whatever the input order, close to the ratios", async () => {
    const dir = await corpus(2000);
    await splitDataset(join(dir, "in.jsonl"), join(dir, "s1"), { train: 0.8, val: 0.2 }, 7);
    const lines = (await readFile(join(dir, "in.jsonl"), "utf8")).split("\n").reverse();
    await writeFile(join(dir, "rev.jsonl"), lines.join("\n"));
    await splitDataset(join(dir, "rev.jsonl"), join(dir, "s2"), { train: 0.8, val: 0.2 }, 7);
    const v1 = new Set(readJsonl(join(dir, "s1", "val.jsonl")).map((r) => r.id));
    const v2 = new Set(readJsonl(join(dir, "s2", "val.jsonl")).map((r) => r.id));
    expect(v1).toEqual(v2);
    expect(v1.size).toBeGreaterThan(320);
    expect(v1.size).toBeLessThan(480);
  });
  it("shard writes N files whose union is the input, stably", async () => {
    const dir = await corpus(300);
    const r = await shardDataset(join(dir, "in.jsonl"), join(dir, "sh"), 4);
    expect(Object.keys(r.outputs)).toEqual(["shard-00000-of-00004.jsonl", "shard-00001-of-00004.jsonl", "shard-00002-of-00004.jsonl", "shard-00003-of-00004.jsonl"]);
    expect(Object.values(r.outputs).reduce((a, b) => a + b, 0)).toBe(300);
    const r2 = await shardDataset(join(dir, "in.jsonl"), join(dir, "sh2"), 4);
    expect(r2.outputs).toEqual(r.outputs);
  });
});
