import { z } from "zod";
import { CHATML_TEMPLATE, ChatTemplate, type ChatMessage } from "./chat-template.js";
import type { TextTokenizer } from "./text-tokenizer.js";
import { TokenizeError } from "./tokenize-error.js";

/** How records become token sequences. */
export const FormatOptions = z.strictObject({
  /** Field holding plain text. @default "text" */
  textField: z.string().min(1).default("text"),
  /** Field holding chat turns `[{role, content}]`. @default "messages" */
  messagesField: z.string().min(1).default("messages"),
  /** Loss on assistant turns only (`assistant`) or on every token (`all`). @default "assistant" */
  lossOn: z.enum(["assistant", "all"]).default("assistant"),
  /** Append the tokenizer's EOS to plain-text documents (chat templates write their own end). @default true */
  addEos: z.boolean().default(true),
  /**
   * Jinja source of the chat template, or `"chatml"` for Qwen2's ChatML template; by default the tokenizer's
   * own `chat_template`.
   */
  chatTemplate: z.string().min(1).optional(),
  /** Roles a chat record may use. @default ["system", "user", "assistant", "tool"] */
  roles: z.array(z.string().min(1)).min(1).default(["system", "user", "assistant", "tool"]),
});
export type FormatOptions = z.input<typeof FormatOptions>;
export type ResolvedFormatOptions = z.output<typeof FormatOptions>;

/** One tokenized document: `labels[i]` is `ids[i]` where the loss applies and −100 elsewhere. */
export interface FormattedDoc {
  ids: Int32Array;
  labels: Int32Array;
}

/** Label of a token the loss ignores (PyTorch's `CrossEntropyLoss(ignore_index=-100)`). */
export const IGNORE_INDEX = -100;

/**
 * Turns dataset records (`{text}` or `{messages}`) into token ids and loss labels with one tokenizer.
 *
 * @example
 * const f = new RecordFormatter(await loadTokenizer("./qwen"), { lossOn: "assistant" });
 * const { ids, labels } = f.format({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }] }, "sft.jsonl:1");
 */
export class RecordFormatter {
  readonly options: ResolvedFormatOptions;
  readonly #template: ChatTemplate | undefined;
  readonly #roles: Set<string>;
  #overhead: number | undefined | null = null;

  constructor(
    readonly tokenizer: TextTokenizer,
    options: FormatOptions = {},
  ) {
    this.options = FormatOptions.parse(options);
    this.#roles = new Set(this.options.roles);
    const source = this.options.chatTemplate === "chatml" ? CHATML_TEMPLATE : (this.options.chatTemplate ?? tokenizer.chatTemplate);
    this.#template = source === undefined ? undefined : new ChatTemplate(source, tokenizer.templateVariables);
  }

  /** Whether chat records can be formatted (a template is known). */
  get hasChatTemplate(): boolean {
    return this.#template !== undefined;
  }

  /**
   * Tokens the chat template adds to an exchange with empty turns: the least a chat sequence needs.
   * Undefined without a template or when the template refuses empty turns.
   */
  templateOverhead(): number | undefined {
    if (!this.#template) return undefined;
    if (this.#overhead === null) {
      try {
        const text = this.#template.render([{ role: "user", content: "" }, { role: "assistant", content: "" }]);
        this.#overhead = this.tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: true }).length;
      } catch {
        this.#overhead = undefined;
      }
    }
    return this.#overhead;
  }

  /** Formats one record; `where` names it in errors (`file:line`). */
  format(record: unknown, where: string): FormattedDoc {
    if (!record || typeof record !== "object" || Array.isArray(record)) {
      throw new TokenizeError("record_invalid", `not a JSON object. Fix: one object per line with "${this.options.textField}" or "${this.options.messagesField}"`, { record: where });
    }
    const r = record as Record<string, unknown>;
    const name = typeof r.id === "string" || typeof r.id === "number" ? `${where} (id ${r.id})` : where;
    const messages = r[this.options.messagesField];
    if (messages !== undefined) return this.formatChat(messages, name);
    const text = r[this.options.textField];
    if (typeof text === "string") return this.formatText(text);
    throw new TokenizeError(
      "record_invalid",
      `has neither a string "${this.options.textField}" nor a "${this.options.messagesField}" list. Fix: rename the field or pass --text-field / --messages-field`,
      { record: name },
    );
  }

  private formatText(text: string): FormattedDoc {
    const tok = this.tokenizer;
    const ids = tok.encode(text, { addSpecialTokens: true });
    if (this.options.addEos && tok.eosId !== undefined && ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
    const out = Int32Array.from(ids);
    return { ids: out, labels: out.slice() };
  }

  private validate(messages: unknown, where: string): ChatMessage[] {
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new TokenizeError("record_invalid", `"${this.options.messagesField}" must be a non-empty list of {role, content}`, { record: where });
    }
    messages.forEach((m: unknown, i) => {
      const msg = m as Partial<ChatMessage> | null;
      if (!msg || typeof msg !== "object" || typeof msg.role !== "string" || typeof msg.content !== "string") {
        throw new TokenizeError("record_invalid", `message ${i} is not {role: string, content: string}`, { record: where });
      }
      if (!this.#roles.has(msg.role)) {
        throw new TokenizeError(
          "unknown_role",
          `message ${i} has unknown role "${msg.role}". Fix: use one of ${[...this.#roles].join(", ")} (or extend --roles)`,
          { record: where },
        );
      }
    });
    return messages as ChatMessage[];
  }

  private formatChat(raw: unknown, where: string): FormattedDoc {
    const template = this.#template;
    if (!template) {
      throw new TokenizeError(
        "template_failed",
        `is a chat record but tokenizer ${this.tokenizer.spec} has no chat_template. Fix: pass --chat-template chatml or a template file`,
        { record: where },
      );
    }
    const messages = this.validate(raw, where);
    const full = template.render(messages, { record: where });
    const ids = this.tokenizer.encode(full, { addSpecialTokens: false, parseSpecial: true });
    if (this.options.lossOn === "all") {
      const out = Int32Array.from(ids);
      return { ids: out, labels: out.slice() };
    }
    const spans = this.assistantSpans(messages, full, where);
    const lens = this.tokenizer.tokenByteLengths(ids);
    const total = lens?.reduce((a, b) => a + b, 0);
    if (lens && total === Buffer.byteLength(full)) {
      const byteSpans = spans.map(([s, e]) => [Buffer.byteLength(full.slice(0, s)), Buffer.byteLength(full.slice(0, e))] as const);
      const out = Int32Array.from(ids);
      const labels = new Int32Array(out.length).fill(IGNORE_INDEX);
      // A token is trained when it overlaps a span (as transformers' char_to_token mask does): a token
      // that merges the template's "\n" with the reply's first characters is learned, not dropped.
      let pos = 0;
      let k = 0;
      for (let t = 0; t < out.length; t++) {
        const end = pos + lens[t]!;
        while (k < byteSpans.length && byteSpans[k]![1] <= pos) k++;
        const span = byteSpans[k];
        if (span && end > span[0] && pos < span[1]) labels[t] = out[t]!;
        pos = end;
      }
      return { ids: out, labels };
    }
    // No token-to-text offsets for this model (normalizers, WordPiece, Unigram): encode the text between
    // span boundaries separately. Boundaries sit next to the template's own markers, so this rarely differs.
    const idsOut: number[] = [];
    const labelsOut: number[] = [];
    let cursor = 0;
    const push = (text: string, train: boolean) => {
      if (!text) return;
      for (const id of this.tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: true })) {
        idsOut.push(id);
        labelsOut.push(train ? id : IGNORE_INDEX);
      }
    };
    for (const [s, e] of spans) {
      push(full.slice(cursor, s), false);
      push(full.slice(s, e), true);
      cursor = e;
    }
    push(full.slice(cursor), false);
    return { ids: Int32Array.from(idsOut), labels: Int32Array.from(labelsOut) };
  }

  /** Character spans of the assistant turns (content and end-of-turn marker) in the rendered text. */
  private assistantSpans(messages: ChatMessage[], full: string, where: string): [number, number][] {
    const template = this.#template!;
    const spans: [number, number][] = [];
    let cursor = 0;
    messages.forEach((m, i) => {
      if (m.role !== "assistant") return;
      // Prefix-stable templates (ChatML, Llama-3, most others): the turn is what rendering it adds after
      // the generation prompt.
      const before = template.render(messages.slice(0, i), { addGenerationPrompt: true, record: where });
      const upto = template.render(messages.slice(0, i + 1), { record: where });
      if (upto.startsWith(before) && full.startsWith(upto) && before.length >= cursor) {
        spans.push([before.length, upto.length]);
        cursor = upto.length;
        return;
      }
      // Templates that rewrite earlier turns: find the content itself, plus the EOS right after it.
      const content = m.content.trim();
      const at = full.indexOf(content, cursor);
      if (at < 0 || content.length === 0) {
        throw new TokenizeError(
          "template_failed",
          `cannot find assistant turn ${i} in the rendered chat template, so its loss mask is unknown. Fix: pass --loss-on all, or a prefix-stable --chat-template`,
          { record: where },
        );
      }
      let end = at + content.length;
      const eos = this.tokenizer.eosToken;
      if (eos && full.startsWith(eos, end)) end += eos.length;
      spans.push([at, end]);
      cursor = end;
    });
    if (spans.length === 0) {
      throw new TokenizeError(
        "no_assistant_turn",
        `has no assistant turn, so nothing would be learned with --loss-on assistant. Fix: add an assistant message, drop the record, or pass --loss-on all`,
        { record: where },
      );
    }
    return spans;
  }
}
