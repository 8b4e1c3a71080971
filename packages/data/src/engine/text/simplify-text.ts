import { PY_WS_CLASS } from "./py-str.js";
import { TERMINAL_PUNCTUATION } from "./terminal-punctuation.js";

/** datatrove's `PUNCTUATION` (utils/text.py): ASCII and CJK punctuation plus control characters. */
export const PUNCTUATION =
  "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»" +
  [
    [0, 9],
    [11, 13],
    [13, 32],
    [127, 160],
  ]
    .flatMap(([a, b]) => Array.from({ length: b! - a! }, (_, i) => String.fromCharCode(a! + i)))
    .join("");

/** The characters of {@link PUNCTUATION} and {@link TERMINAL_PUNCTUATION} (datatrove's `PUNCTUATION_SET`). */
export const PUNCTUATION_SET: ReadonlySet<string> = new Set([...PUNCTUATION, ...TERMINAL_PUNCTUATION]);

/** datatrove's `TextNormConfig`. */
export interface TextNormConfig {
  /** @default true */
  lowercase?: boolean;
  /** @default true */
  norm_whitespace?: boolean;
  /** @default true */
  remove_punctuation?: boolean;
  /** @default true */
  norm_unicode_diacritics?: boolean;
  /** @default true */
  norm_numbers?: boolean;
  /** @default false */
  norm_weekdays?: boolean;
  /** @default false */
  norm_monthnames?: boolean;
}

// Every whitespace and PUNCTUATION character is in the BMP: non-Unicode regexps match the same
// characters and run faster in V8.
const WS_RUN = new RegExp(`[${PY_WS_CLASS}]+`, "g");
const WS_EDGE = new RegExp(`^[${PY_WS_CLASS}]+|[${PY_WS_CLASS}]+$`, "g");
const PUNCT_RE = new RegExp(`[${[...PUNCTUATION].map((c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")).join("")}]`, "g");
const MN_RE = /\p{Mn}/gu;
const NUMBERS_RE = /\p{Nd}+(?:[.,\u060c\u066b\u2396\u2397\u2398]\p{Nd}+)?/gu;
const NON_ASCII = /[^\x00-\x7f]/;
const WEEKDAYS = /monday|tuesday|wednesday|thursday|friday|saturday|sunday/g;
const MONTHS = /january|february|march|april|may|june|july|august|september|october|november|december/g;

/**
 * datatrove's `simplify_text`, the normalisation MinHash shingles are built from, in its order:
 * lowercase; numbers (digit runs, with one decimal separator) to `0`; optionally weekdays and
 * months; punctuation to spaces; whitespace runs to one space; NFD with combining marks dropped.
 */
export function simplifyText(text: string, config: TextNormConfig = {}): string {
  let t = text;
  if (config.lowercase ?? true) t = t.toLowerCase();
  if (config.norm_numbers ?? true) t = t.replace(NUMBERS_RE, "0");
  if (config.norm_weekdays ?? false) t = t.replace(WEEKDAYS, "WEEKDAY");
  if (config.norm_monthnames ?? false) t = t.replace(MONTHS, "MONTH");
  if (config.remove_punctuation ?? true) t = t.replace(PUNCT_RE, " ");
  if (config.norm_whitespace ?? true) t = t.replace(WS_EDGE, "").replace(WS_RUN, " ");
  if ((config.norm_unicode_diacritics ?? true) && NON_ASCII.test(t)) t = t.normalize("NFD").replace(MN_RE, "");
  return t.replace(WS_EDGE, "");
}
