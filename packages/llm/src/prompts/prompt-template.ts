import type { ChatMessage } from "../client/types.js";

/** A template that names a variable its values do not have. */
export class TemplateError extends Error {
  override readonly name = "TemplateError";
  readonly retryable = false;
  readonly missing: string[];
  constructor(message: string, missing: string[], options?: { cause?: unknown }) {
    super(message, options);
    this.missing = missing;
  }
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*(?:\|\s*(json|trim|upper|lower)\s*)?\}\}/g;

/** Variable names (dotted paths) a template uses, in first-use order. */
export function templateVariables(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) if (!out.includes(m[1]!)) out.push(m[1]!);
  return out;
}

function lookup(vars: Readonly<Record<string, unknown>>, path: string): { found: boolean; value: unknown } {
  let cur: unknown = vars;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, part)) return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[part];
  }
  return { found: true, value: cur };
}

/**
 * Fills `{{ name }}` placeholders (dotted paths into nested values, optional filter `json`, `trim`,
 * `upper`, `lower`). Strings are inserted as they are, other values as JSON. A placeholder without a
 * value throws {@link TemplateError} naming every missing variable — never a silent empty string.
 *
 * @example
 * renderTemplate("Write a {{ style }} poem about {{ topic.name }}.", { style: "short", topic: { name: "rain" } })
 * // → "Write a short poem about rain."
 */
export function renderTemplate(template: string, vars: Readonly<Record<string, unknown>>): string {
  const missing: string[] = [];
  const out = template.replace(PLACEHOLDER, (_m, path: string, filter: string | undefined) => {
    const { found, value } = lookup(vars, path);
    if (!found || value === undefined) {
      if (!missing.includes(path)) missing.push(path);
      return "";
    }
    let s = filter === "json" || typeof value !== "string" ? JSON.stringify(value) : value;
    if (filter === "trim") s = s.trim();
    else if (filter === "upper") s = s.toUpperCase();
    else if (filter === "lower") s = s.toLowerCase();
    return s;
  });
  if (missing.length) throw new TemplateError(`template variables without a value: ${missing.join(", ")}`, missing);
  return out;
}

/** One worked example shown to the model before the real input. */
export interface FewShotExample {
  input: string;
  output: string;
}

/** Parts of a chat prompt. */
export interface ChatPromptParts {
  system?: string | undefined;
  fewShot?: readonly FewShotExample[] | undefined;
  user: string;
}

/**
 * Builds chat messages: an optional system message, each few-shot example as a user/assistant
 * pair, then the input as one user message.
 *
 * @example
 * buildChatMessages({ system: "Answer briefly.", fewShot: [{ input: "1+1", output: "2" }], user: "2+2" })
 */
export function buildChatMessages(parts: ChatPromptParts): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (parts.system) messages.push({ role: "system", content: parts.system });
  for (const ex of parts.fewShot ?? []) messages.push({ role: "user", content: ex.input }, { role: "assistant", content: ex.output });
  messages.push({ role: "user", content: parts.user });
  return messages;
}

/**
 * The same prompt as plain text for `/completions` endpoints (and log-likelihood scoring):
 * system text, then `Q:`/`A:` pairs, ending with `A:` for the model to continue.
 */
export function buildCompletionPrompt(parts: ChatPromptParts): string {
  let s = parts.system ? `${parts.system}\n\n` : "";
  for (const ex of parts.fewShot ?? []) s += `Q: ${ex.input}\nA: ${ex.output}\n\n`;
  return `${s}Q: ${parts.user}\nA:`;
}

/** Every combination of the listed values (cartesian product), keys in the given order. */
export function cartesianProduct(lists: Readonly<Record<string, readonly string[]>>): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const [k, values] of Object.entries(lists)) {
    const next: Record<string, string>[] = [];
    for (const o of out) for (const v of values) next.push({ ...o, [k]: v });
    out = next;
  }
  return out;
}
