import { pySplit } from "./python-text.js";

// sacrebleu TokenizerRegexp, applied in order (Python re.sub is global and left to right, as is
// String.replace with /g). Character ranges copied verbatim: {-~  [-`  space-&  (-+  :-@  /
const RE_PUNCT = /([{-~[-` -&(-+:-@/])/g;
const RE_PERIOD_COMMA_AFTER_NON_DIGIT = /([^0-9])([.,])/g;
const RE_PERIOD_COMMA_BEFORE_NON_DIGIT = /([.,])([^0-9])/g;
const RE_DASH_AFTER_DIGIT = /([0-9])(-)/g;

/**
 * sacrebleu's `13a` tokenizer (mteval-v13a, the WMT standard): the tokenisation BLEU uses by default.
 *
 * @example
 * tokenize13a("It wasn't surprising.") // → "It wasn ' t surprising ."
 */
export function tokenize13a(line: string): string {
  line = line.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
  if (line.includes("&")) {
    line = line.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
  }
  return tokenizeRegexp(` ${line} `);
}

/** sacrebleu's `TokenizerRegexp`: the language-dependent half of `13a`. */
export function tokenizeRegexp(line: string): string {
  line = line.replace(RE_PUNCT, " $1 ");
  line = line.replace(RE_PERIOD_COMMA_AFTER_NON_DIGIT, "$1 $2 ");
  line = line.replace(RE_PERIOD_COMMA_BEFORE_NON_DIGIT, " $1 $2");
  line = line.replace(RE_DASH_AFTER_DIGIT, "$1 $2 ");
  return pySplit(line).join(" ");
}

/** sacrebleu's `none` tokenizer: the line unchanged. */
export function tokenizeNone(line: string): string {
  return line;
}
