import { describe, expect, it } from "vitest";
import { GopherQualityFilter, GopherRepetitionFilter, SpacyEnglishTokenizer, WordSplitter } from "../../src/engine/index.js";
import { loadSample } from "./fixtures.js";

// Expected values were produced by running spaCy 3.8.16 (`spacy.blank("en")` + `sentencizer`,
// tokens stripped as datatrove does) on these strings; the full-corpus comparison is in the parity test.
describe("SpacyEnglishTokenizer", () => {
  const tok = SpacyEnglishTokenizer.shared();
  it("splits contractions, punctuation and brackets like spaCy", () => {
    expect(tok.words("Don't stop (yet).")).toEqual(["Do", "n't", "stop", "(", "yet", ")", "."]);
    expect(tok.words("Let's go to N.Y.!")).toEqual(["Let", "'s", "go", "to", "N.Y.", "!"]);
    expect(tok.words("It costs $5.50, ok?")).toEqual(["It", "costs", "$", "5.50", ",", "ok", "?"]);
  });
  it("keeps URLs and e-mail-like tokens whole and splits hyphen infixes between letters", () => {
    expect(tok.words("see https://example.com/a?b=1 now")).toEqual(["see", "https://example.com/a?b=1", "now"]);
    expect(tok.words("a well-known fact")).toEqual(["a", "well", "-", "known", "fact"]);
  });
  it("treats Python's whitespace, not JavaScript's, as separators (U+FEFF is not a space)", () => {
    expect(tok.words("a\u00a0b")).toEqual(["a", "b"]);
    expect(tok.words("a\ufeffb")).toEqual(["a\ufeffb"]);
  });
  it("counts sentences like the sentencizer (a period starts a new sentence at the next non-punct token)", () => {
    expect(tok.countSentences("One. Two! Three?")).toBe(3);
    expect(tok.countSentences("No terminal punctuation here")).toBe(1);
    expect(tok.countSentences("Wait... what?! Yes.")).toBe(2); // "..." is not a sentencizer mark
    expect(tok.countSentences("")).toBe(0);
  });
  it("skips the affix regular expressions only where they cannot match (ASCII shape checks)", () => {
    // Expected: the tokenizer before the shape checks (commit f75f3c7, every span through the
    // prefix and suffix regexes). The two agreed on all 735,000 distinct spans of the 96.6 MB
    // bench corpus and on every 1- to 3-piece combination of affix-like pieces.
    const cases: Record<string, string[]> = {
      "5mbar": ["5", "mbar"],
      "9km/h": ["9", "km/h"],
      "12kg": ["12", "kg"],
      x9MB: ["x9", "MB"],
      "ab's": ["ab", "'s"],
      "AB'S": ["AB", "'S"],
      US$: ["US$"],
      US$5: ["US$", "5"],
      C$10: ["C$", "10"],
      A$: ["A$"],
      Apple: ["Apple"],
      "abcdefghij..": ["abcdefghij", ".."],
      "a.....": ["a", "....."],
      "--verbose": ["--verbose"],
      "/usr/bin/env": ["/usr", "/", "bin", "/", "env"],
      "v1.2.3": ["v1.2.3"],
      "2024-01-01": ["2024", "-", "01", "-", "01"],
      "foo)": ["foo", ")"],
      "(bar": ["(", "bar"],
      dont: ["do", "nt"],
      "10%": ["10", "%"],
      "+5": ["+5"],
      "+x": ["+", "x"],
      "20°C.": ["20", "°", "C", "."],
      // One-character suffixes taken without the regex (expected: the regex path, commit 67fcbf7).
      "f(x);": ["f(x", ")", ";"],
      '"q"': ['"', "q", '"'],
      "`code`": ["`", "code", "`"],
      "x?!": ["x", "?", "!"],
      "#tag#": ["#", "tag", "#"],
      "<b>": ["<", "b", ">"],
      a_: ["a", "_"],
      "10%)": ["10", "%", ")"],
      "5+,": ["5", "+", ","],
      "U.S.'": ["U.S.", "'"],
      "ab's)": ["ab", "'s", ")"],
      "..,": ["..", ","],
    };
    const fresh = new SpacyEnglishTokenizer();
    for (const [span, want] of Object.entries(cases)) expect([...fresh.span(span)], span).toEqual(want);
  });
  it("gives the same words, sentence counts and filter verdicts when its caches empty between and within calls", () => {
    // A tiny cache empties the span cache inside long documents and the token table (new ids, new
    // epoch) between calls; a large one never does on this sample.
    const docs = loadSample().slice(0, 120);
    const big = new SpacyEnglishTokenizer({ maxCacheEntries: 1_000_000 });
    const tiny = new SpacyEnglishTokenizer({ maxCacheEntries: 64, maxVocabEntries: 64 });
    const epoch0 = tiny.epoch;
    for (const d of docs) {
      expect(tiny.words(d.text)).toEqual(big.words(d.text));
      const line = d.text.slice(0, 400);
      expect(tiny.countSentences(line)).toBe(big.countSentences(line));
    }
    expect(tiny.epoch).toBeGreaterThan(epoch0);
    const filters = (t: SpacyEnglishTokenizer): [GopherRepetitionFilter, GopherQualityFilter] => {
      const s = new WordSplitter(t);
      return [new GopherRepetitionFilter({}, s), new GopherQualityFilter({}, s)];
    };
    const [repBig, qBig] = filters(new SpacyEnglishTokenizer({ maxCacheEntries: 1_000_000 }));
    const [repTiny, qTiny] = filters(new SpacyEnglishTokenizer({ maxCacheEntries: 64, maxVocabEntries: 64 }));
    for (const d of docs) {
      expect(repTiny.apply(d.text)).toEqual(repBig.apply(d.text));
      expect(qTiny.apply(d.text)).toEqual(qBig.apply(d.text));
    }
  });
});
