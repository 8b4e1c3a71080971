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

describe("tiktoken vocab sizes", () => {
  it("equal tiktoken's n_vocab (special tokens included)", async () => {
    expect((await loadTokenizer("cl100k_base")).vocabSize).toBe(100277);
    expect((await loadTokenizer("o200k_base")).vocabSize).toBe(200019);
  });
});
