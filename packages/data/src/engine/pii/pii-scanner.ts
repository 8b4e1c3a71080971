import { z } from "zod";

/** Kinds of personal or secret data the scanner finds. */
export const PiiKind = z.enum(["email", "phone", "ipv4", "ipv6", "credit_card", "secret"]);
export type PiiKind = z.infer<typeof PiiKind>;

/** Options of {@link PiiScanner}. */
export const PiiOptions = z.strictObject({
  /** Kinds to look for. @default all */
  kinds: z.array(PiiKind).default(["email", "phone", "ipv4", "ipv6", "credit_card", "secret"]),
  /** `redact` replaces each match with `<KIND>`; `drop` removes the document; `detect` only counts. @default "redact" */
  action: z.enum(["redact", "drop", "detect"]).default("redact"),
});
export type PiiOptions = z.input<typeof PiiOptions>;

/** One finding. */
export interface PiiMatch {
  kind: PiiKind;
  start: number;
  end: number;
}

const EMAIL = /[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}/g;
// International or North-American numbers: +country, groups separated by space, dot or dash, optional (area).
const PHONE = /(?<![\w+]|\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w]|[ .-]\d)/g;
const IPV4 = /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])/g;
const IPV6 =
  /(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}|::(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4})(?![\w:])/g;
const CARD = /(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)/g;
const SECRETS: RegExp[] = [
  /\bAKIA[0-9A-Z]{16}\b/g, // AWS access key id
  /\bgh[pousr]_[A-Za-z0-9]{36,255}\b/g, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{22,255}\b/g,
  /\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b/g, // OpenAI / Anthropic style keys
  /\bxox[baprs]-[A-Za-z0-9-]{10,}\b/g, // Slack
  /\bAIza[0-9A-Za-z_-]{35}\b/g, // Google API key
  /\bhf_[A-Za-z]{34}\b/g, // Hugging Face
  /\bnxk_[A-Za-z0-9_-]{16,}\b/g, // Nexa Forge keys
  /-----BEGIN (?:RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----/g,
];

/** The Luhn checksum, which every payment card number passes. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

/**
 * Finds e-mail addresses, phone numbers, IPv4/IPv6 addresses, payment card numbers (13–19
 * digits, Luhn-checked) and common secret / API-key formats; counts, redacts (`<EMAIL>`, …) or
 * drops.
 *
 * @example
 * new PiiScanner().redact("mail bob@example.com") // { text: "mail <EMAIL>", counts: { email: 1 } }
 */
export class PiiScanner {
  readonly options: z.output<typeof PiiOptions>;

  constructor(options: PiiOptions = {}) {
    this.options = PiiOptions.parse(options);
  }

  /** All findings, earliest first; overlapping findings keep the first-listed kind. */
  scan(text: string): PiiMatch[] {
    const found: PiiMatch[] = [];
    const kinds = new Set(this.options.kinds);
    const add = (kind: PiiKind, re: RegExp, check?: (m: string) => boolean): void => {
      re.lastIndex = 0;
      for (const m of text.matchAll(re)) {
        if (check && !check(m[0])) continue;
        found.push({ kind, start: m.index!, end: m.index! + m[0].length });
      }
    };
    if (kinds.has("secret") && /AKIA|gh[pousr]_|github_pat_|sk-|xox|AIza|hf_|nxk_|PRIVATE KEY/.test(text)) for (const re of SECRETS) add("secret", re);
    if (kinds.has("email") && text.includes("@")) add("email", EMAIL);
    if (kinds.has("credit_card")) add("credit_card", CARD, (m) => luhnValid(m.replace(/[ -]/g, "")));
    if (kinds.has("ipv4")) add("ipv4", IPV4);
    if (kinds.has("ipv6") && text.includes(":")) add("ipv6", IPV6, (m) => /[0-9A-Fa-f]/.test(m) && (m.match(/:/g)?.length ?? 0) >= 2);
    if (kinds.has("phone")) add("phone", PHONE, (m) => m.replace(/\D/g, "").length >= 7);
    found.sort((a, b) => a.start - b.start || b.end - b.start - (a.end - a.start));
    const out: PiiMatch[] = [];
    let lastEnd = -1;
    for (const f of found) {
      if (f.start < lastEnd) continue;
      out.push(f);
      lastEnd = f.end;
    }
    return out;
  }

  /** Counts per kind and the text with each finding replaced by `<KIND>`. */
  redact(text: string): { text: string; counts: Partial<Record<PiiKind, number>> } {
    const matches = this.scan(text);
    const counts: Partial<Record<PiiKind, number>> = {};
    if (matches.length === 0) return { text, counts };
    let out = "";
    let pos = 0;
    for (const m of matches) {
      counts[m.kind] = (counts[m.kind] ?? 0) + 1;
      out += text.slice(pos, m.start) + `<${m.kind.toUpperCase()}>`;
      pos = m.end;
    }
    return { text: out + text.slice(pos), counts };
  }
}
