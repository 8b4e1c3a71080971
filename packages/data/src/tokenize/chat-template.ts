import { Template } from "@huggingface/jinja";
import { TokenizeError } from "./tokenize-error.js";

/** One chat turn as SFT datasets store it. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/**
 * Qwen2-Instruct's published ChatML template, used with `chatTemplate: "chatml"` for tokenizers that ship
 * none (the tiktoken encodings): `<|im_start|>` / `<|im_end|>` are then ordinary text for them.
 */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** Python's `str.isspace()` set, which Jinja's `trim` / `strip` use (JavaScript's `trim` also strips U+FEFF and keeps U+0085). */
const PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_LEADING = new RegExp(`^[${PY_SPACE}]+`);
const PY_TRAILING = new RegExp(`[${PY_SPACE}]+$`);
function pyStrip(this: string): string {
  return String(this).replace(PY_LEADING, "").replace(PY_TRAILING, "");
}
function pyLstrip(this: string): string {
  return String(this).replace(PY_LEADING, "");
}
function pyRstrip(this: string): string {
  return String(this).replace(PY_TRAILING, "");
}

/**
 * Runs `fn` with String.prototype.trim/trimStart/trimEnd behaving like Python's strip, because
 * @huggingface/jinja implements `| trim` and `.strip()` with them and templates are written for Python
 * (`"\ufeffhi" | trim` keeps the BOM in transformers). Rendering is synchronous, so nothing else runs meanwhile.
 */
function withPythonStrip<T>(fn: () => T): T {
  const proto = String.prototype;
  const saved = [proto.trim, proto.trimStart, proto.trimEnd] as const;
  proto.trim = pyStrip;
  proto.trimStart = pyLstrip;
  proto.trimEnd = pyRstrip;
  try {
    return fn();
  } finally {
    [proto.trim, proto.trimStart, proto.trimEnd] = saved;
  }
}

/** A compiled chat template (`tokenizer_config.json`'s `chat_template`), rendered as `transformers` does. */
export class ChatTemplate {
  readonly #template: Template;

  /**
   * @param source Jinja source of the template.
   * @param variables Extra globals (`bos_token`, `eos_token`, …) from the tokenizer config.
   */
  constructor(
    readonly source: string,
    private readonly variables: Record<string, unknown> = {},
  ) {
    try {
      this.#template = new Template(source);
    } catch (err) {
      throw new TokenizeError("template_failed", `the chat template does not parse (${(err as Error).message}). Fix: correct chat_template in tokenizer_config.json or pass --chat-template`, { cause: err });
    }
  }

  /**
   * Renders `messages` to text.
   *
   * @example
   * new ChatTemplate(CHATML_TEMPLATE).render([{ role: "user", content: "hi" }], { addGenerationPrompt: true });
   */
  render(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean; record?: string } = {}): string {
    try {
      return withPythonStrip(() => this.#template.render({
        ...this.variables,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
      }));
    } catch (err) {
      throw new TokenizeError(
        "template_failed",
        `the chat template failed to render (${(err as Error).message}). Fix: make the record match what the template expects, or pass another --chat-template`,
        { record: options.record, cause: err },
      );
    }
  }
}
