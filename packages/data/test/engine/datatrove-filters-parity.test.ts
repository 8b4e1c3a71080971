import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  C4_FINEWEB_PRESET,
  C4QualityFilter,
  type DocFilter,
  FineWebQualityFilter,
  GopherQualityFilter,
  GopherRepetitionFilter,
  WordSplitter,
} from "../../src/engine/index.js";
import { fixturePath, loadSample, readJsonl } from "./fixtures.js";

// datatrove's own verdict per document (golden_filters.jsonl): true = kept, else its reason string.
const docs = loadSample();
const golden = new Map(readJsonl(fixturePath("golden_filters.jsonl")).map((g) => [g.id as string, g]));
const sha256 = (t: string): string => createHash("sha256").update(t, "utf8").digest("hex");

function agreement(key: string, filter: DocFilter): { agree: number; textChecked: number; textOk: number; mismatches: string[] } {
  let agree = 0;
  let textChecked = 0;
  let textOk = 0;
  const mismatches: string[] = [];
  for (const d of docs) {
    const g = golden.get(d.id)!;
    const v = filter.apply(d.text);
    const got = v.keep ? true : v.reason;
    if (got === g[key]) agree++;
    else mismatches.push(`${d.id}: got ${String(got)}, datatrove ${String(g[key])}`);
    if (v.keep && g[key] === true && key.startsWith("c4")) {
      textChecked++;
      const out = v.text ?? d.text;
      const want = g[`${key}_text_sha256`] as string | undefined;
      if (want === undefined ? out === d.text : sha256(out) === want) textOk++;
    }
  }
  return { agree, textChecked, textOk, mismatches };
}

describe("datatrove parity on the 589-document sample", () => {
  const splitter = new WordSplitter();
  const cases: [string, DocFilter][] = [
    ["gopher_quality", new GopherQualityFilter({}, splitter)],
    ["gopher_repetition", new GopherRepetitionFilter({}, splitter)],
    ["c4", new C4QualityFilter(C4_FINEWEB_PRESET, splitter)],
    ["c4_default", new C4QualityFilter({}, splitter, "c4_default")],
    ["fineweb", new FineWebQualityFilter({}, splitter)],
  ];
  it.each(cases.map(([key, filter]) => ({ key, filter })))("$key agrees with datatrove on ≥ 99.5% of documents, reason strings included", ({ key, filter }) => {
    expect(docs).toHaveLength(589);
    const r = agreement(key, filter);
    const pct = (100 * r.agree) / docs.length;
    console.log(`${key}: ${r.agree}/${docs.length} = ${pct.toFixed(2)}%${key.startsWith("c4") ? `, edited text ${r.textOk}/${r.textChecked}` : ""}`);
    expect(pct, r.mismatches.slice(0, 5).join("\n")).toBeGreaterThanOrEqual(99.5);
    if (key.startsWith("c4")) expect(r.textOk).toBe(r.textChecked);
  });

  it("the FineWeb chain (repetition → quality → C4 FineWeb → FineWeb on C4's text) matches datatrove's first drop", () => {
    const chain: DocFilter[] = [new GopherRepetitionFilter({}, splitter), new GopherQualityFilter({}, splitter), new C4QualityFilter(C4_FINEWEB_PRESET, splitter), new FineWebQualityFilter({}, splitter)];
    const names = ["gopher_repetition", "gopher_quality", "c4", "fineweb"];
    let agree = 0;
    for (const d of docs) {
      let text = d.text;
      let got: true | string = true;
      for (let i = 0; i < chain.length; i++) {
        const v = chain[i]!.apply(text);
        if (!v.keep) {
          got = `${names[i]}:${v.reason}`;
          break;
        }
        if (v.text !== undefined) text = v.text;
      }
      if (got === golden.get(d.id)!.fineweb_chain) agree++;
    }
    console.log(`fineweb_chain: ${agree}/${docs.length}`);
    expect(agree / docs.length).toBeGreaterThanOrEqual(0.995);
  });
});

describe("filter edge cases the sample does not hold", () => {
  it("c4 drops lines with a word over max_word_length code points (astral characters count once) and counts words by Python's split()", () => {
    const f = new C4QualityFilter({ max_word_length: 10, min_num_sentences: 1, min_words_per_line: 3 });
    const ok = "One two three.";
    // 8 emoji are 16 UTF-16 units but 8 code points: not too long for Python
    expect(f.apply(`${ok}\nThe ${"🙂".repeat(8)} stays here.`)).toEqual({ keep: true });
    expect(f.apply(`${ok}\nThe ${"x".repeat(11)} goes here.`)).toEqual({ keep: true, text: ok });
    // U+3000 and U+0085 are whitespace to Python's split(): "a\u3000b c" is three words
    expect(f.apply(`${ok}\na\u3000b c.`)).toEqual({ keep: true });
    expect(f.apply(`${ok}\na\ufeffb c.`)).toEqual({ keep: true, text: ok });
  });
});
