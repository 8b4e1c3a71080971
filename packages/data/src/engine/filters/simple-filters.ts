import { z } from "zod";
import { pyLen, pySplitCount } from "../text/py-str.js";
import { type DocFilter, drop, type FilterVerdict, KEEP } from "./doc-filter.js";

/** Options of {@link LengthFilter}; every bound is optional. */
export const LengthOptions = z.strictObject({
  min_chars: z.number().int().min(0).optional(),
  max_chars: z.number().int().min(0).optional(),
  min_words: z.number().int().min(0).optional(),
  max_words: z.number().int().min(0).optional(),
});
export type LengthOptions = z.input<typeof LengthOptions>;

/** Character (code point) and whitespace-word count bounds. Reasons: `too_short_chars`, `too_long_chars`, `too_few_words`, `too_many_words`. */
export class LengthFilter implements DocFilter {
  readonly name = "length";
  private readonly o: LengthOptions;

  constructor(options: LengthOptions = {}) {
    this.o = LengthOptions.parse(options);
  }

  apply(text: string): FilterVerdict {
    const o = this.o;
    if (o.min_chars !== undefined || o.max_chars !== undefined) {
      const n = pyLen(text);
      if (o.min_chars !== undefined && n < o.min_chars) return drop("too_short_chars");
      if (o.max_chars !== undefined && n > o.max_chars) return drop("too_long_chars");
    }
    if (o.min_words !== undefined || o.max_words !== undefined) {
      const n = pySplitCount(text);
      if (o.min_words !== undefined && n < o.min_words) return drop("too_few_words");
      if (o.max_words !== undefined && n > o.max_words) return drop("too_many_words");
    }
    return KEEP;
  }
}

/** One custom rule: a regular expression and what a match does. */
export const RegexRule = z.strictObject({
  /** Name used as the drop reason (`regex:<name>`). */
  name: z.string().min(1),
  /** JavaScript regular expression source. */
  pattern: z.string().min(1),
  /** Flags (`i`, `m`, `s`, `u`). @default "" */
  flags: z.string().regex(/^[imsu]*$/, "flags may only contain i, m, s, u").default(""),
  /** `drop` the document on a match, `keep_only` drop when it does not match, `remove` delete the matches. @default "drop" */
  action: z.enum(["drop", "keep_only", "remove"]).default("drop"),
});
export type RegexRule = z.input<typeof RegexRule>;

/** Options of {@link RegexFilter}. */
export const RegexOptions = z.strictObject({ rules: z.array(RegexRule).min(1) });
export type RegexOptions = z.input<typeof RegexOptions>;

/** Custom regular-expression rules applied in order. */
export class RegexFilter implements DocFilter {
  readonly name = "regex";
  private readonly rules: { name: string; re: RegExp; action: "drop" | "keep_only" | "remove" }[];

  constructor(options: RegexOptions) {
    const o = RegexOptions.parse(options);
    this.rules = o.rules.map((r, i) => {
      const rule = RegexRule.parse(r);
      try {
        return { name: rule.name, re: new RegExp(rule.pattern, rule.flags + (rule.action === "remove" ? "g" : "")), action: rule.action };
      } catch (e) {
        throw new Error(`regex rule ${i} ("${rule.name}"): invalid pattern ${JSON.stringify(rule.pattern)} (${(e as Error).message}); fix the pattern`);
      }
    });
  }

  apply(text: string): FilterVerdict {
    let t = text;
    for (const r of this.rules) {
      if (r.action === "remove") {
        r.re.lastIndex = 0;
        t = t.replace(r.re, "");
      } else {
        const hit = r.re.test(t);
        if (r.action === "drop" && hit) return drop(`regex:${r.name}`);
        if (r.action === "keep_only" && !hit) return drop(`regex:${r.name}`);
      }
    }
    return t === text ? KEEP : { keep: true, text: t };
  }
}
