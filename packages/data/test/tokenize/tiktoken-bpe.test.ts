import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { get_encoding } from "tiktoken";
import { describe, expect, it } from "vitest";
import { TiktokenBpe } from "../../src/tokenize/tiktoken-bpe.js";
import { loadTokenizer } from "../../src/tokenize/index.js";
import { readJsonl } from "./fixtures.js";

const corpus = readJsonl<{ id: string; text: string }>("corpus.jsonl");

/** Text that exercises the merge path: long pieces, pieces not in the vocabulary, odd code points. */
const HARD = [
  "x".repeat(5000),
  " ".repeat(3000) + "end",
  "a".repeat(1200) + "\u00e9".repeat(700) + "\u4e2d\u6587".repeat(400),
  "\ud83d\ude00\ud83d\ude00 emoji, a lone \ud800 high and a lone \udc00 low surrogate, and one at the end \ud83d",
  "Pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious",
  "0123456789012345678901234567890 3.14159 1,000,000 ١٢٣٤ ⅫⅦ",
  "line\r\n\r\n  \tindented\n\n\n    trailing   ",
  "don't I'LL we'Re they've SHE'D it's Ve 'll",
  "<|endoftext|> <|fim_prefix|> are ordinary text here",
  "ZmFrZSBiYXNlNjQgYmxvYiB0aGF0IGlzIG5vdCBhIHdvcmQgYXQgYWxsIGFuZCBrZWVwcyBnb2luZyBvbiBhbmQgb24=",
  // ASCII edge cases of o200k's hand-written scanner, each also followed by non-ASCII text.
  ...[
    "  ... ((hello \t(x I'LL don't we'Re they've SHE'D it's 'sup ab12cd 1234567 a  1 x\n\n  y trailing  ",
    ".\n/ ./\r\n// - \u000b\f\tz \u001c\u007fq HELLOworld helloWorld ABc a'b a'llx O'Neil",
    "end with space ",
    "end with newline\n",
    "end with spaces and newline \n  ",
    "12",
    "(",
    " ",
    "x",
  ].flatMap((t) => [t, `${t}é`, `${t}\u00a0x`, `${t}\u2026`, `${t}\u00b2`, `${t}\ud83d\ude00`, `é${t}`]),
];

describe.each(["cl100k_base", "o200k_base"] as const)("TiktokenBpe %s equals OpenAI's tiktoken (WASM build)", (name) => {
  const bpe = TiktokenBpe.load(name);
  const ref = get_encoding(name);
  const expectSame = (text: string) => expect(bpe.encodeOrdinary(text), JSON.stringify(text.slice(0, 80))).toEqual(Array.from(ref.encode_ordinary(text)));

  it(`on ${corpus.length} corpus docs without U+FEFF/U+0085`, () => {
    for (const d of corpus) if (!/[\u0085\ufeff]/.test(d.text)) expectSame(d.text);
  });

  it("on long pieces, pieces outside the vocabulary and surrogates", () => {
    for (const t of HARD) expectSame(t);
  });

  it("a second pass (merge cache filled) gives the same ids", () => {
    for (const t of HARD) expectSame(t);
    for (const d of corpus.slice(0, 20)) if (!/[\u0085\ufeff]/.test(d.text)) expectSame(d.text);
  });
});

describe("TiktokenBpe with a pattern that leaves characters unmatched", () => {
  it("skips them, as tiktoken's find_iter does", () => {
    const path = createRequire(import.meta.url).resolve("tiktoken/encoders/cl100k_base.json");
    const ranks = (JSON.parse(readFileSync(path, "utf8")) as { bpe_ranks: string }).bpe_ranks;
    const lettersOnly = new TiktokenBpe(ranks, String.raw`\p{L}+`);
    const ref = get_encoding("cl100k_base");
    const ids = (t: string) => Array.from(ref.encode_ordinary(t));
    expect(lettersOnly.encodeOrdinary("hello, world!! 42 again")).toEqual([...ids("hello"), ...ids("world"), ...ids("again")]);
    expect(lettersOnly.encodeOrdinary("123 ...")).toEqual([]);
  });
});

describe("tiktoken vocab sizes", () => {
  it("equal tiktoken's n_vocab (special tokens included)", async () => {
    expect((await loadTokenizer("cl100k_base")).vocabSize).toBe(100277);
    expect((await loadTokenizer("o200k_base")).vocabSize).toBe(200019);
  });
});
