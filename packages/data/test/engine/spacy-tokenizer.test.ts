import { describe, expect, it } from "vitest";
import { SpacyEnglishTokenizer } from "../../src/engine/index.js";

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
});
