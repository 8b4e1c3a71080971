import { describe, expect, it } from "vitest";
import { ChatTemplate, IGNORE_INDEX, loadTokenizer, RecordFormatter, TokenizeError, type ChatMessage } from "../../src/tokenize/index.js";
import { FIXTURES, readJsonl } from "./fixtures.js";

interface ChatGolden {
  style: string;
  id: string;
  add_generation_prompt: boolean;
  text: string;
  ids: number[];
}
const conversations = new Map(readJsonl<{ id: string; messages: ChatMessage[] }>("chat/conversations.jsonl").map((c) => [c.id, c]));
const goldens = readJsonl<ChatGolden>("golden_chat.jsonl");

describe.each(["chatml", "llama3"])("%s template equals transformers' apply_chat_template", (style) => {
  const cases = goldens.filter((g) => g.style === style);
  it(`renders ${cases.length} conversations to the same text and ids`, async () => {
    const tok = await loadTokenizer(FIXTURES + "chat/" + style);
    const template = new ChatTemplate(tok.chatTemplate!, tok.templateVariables);
    const all = new RecordFormatter(tok, { lossOn: "all" });
    for (const g of cases) {
      const conv = conversations.get(g.id)!;
      const msgs = g.add_generation_prompt ? conv.messages.slice(0, -1) : conv.messages;
      expect(template.render(msgs, { addGenerationPrompt: g.add_generation_prompt })).toBe(g.text);
      expect(tok.encode(g.text, { addSpecialTokens: false, parseSpecial: true })).toEqual(g.ids);
      if (!g.add_generation_prompt) expect(Array.from(all.format(conv, g.id).ids)).toEqual(g.ids);
    }
  });

  it("keeps the loss on assistant turns only, with the end-of-turn marker", async () => {
    const tok = await loadTokenizer(FIXTURES + "chat/" + style);
    const f = new RecordFormatter(tok);
    for (const g of cases.filter((c) => !c.add_generation_prompt)) {
      const conv = conversations.get(g.id)!;
      const { ids, labels } = f.format(conv, g.id);
      expect(Array.from(ids)).toEqual(g.ids);
      // Contiguous runs of trained tokens, decoded, are exactly the assistant turns as the template writes them.
      const runs: number[][] = [];
      labels.forEach((l, i) => {
        if (l === IGNORE_INDEX) return;
        expect(l).toBe(ids[i]);
        if (i > 0 && labels[i - 1] !== IGNORE_INDEX) runs[runs.length - 1]!.push(l);
        else runs.push([l]);
      });
      const assistant = conv.messages.filter((m) => m.role === "assistant");
      expect(runs.length).toBe(assistant.length);
      runs.forEach((run, k) => {
        const text = tok.decode(run);
        const content = style === "llama3" ? assistant[k]!.content.trim() : assistant[k]!.content;
        const end = style === "llama3" ? "<|eot_id|>" : "<|im_end|>\n";
        // Exactly the turn, or the turn plus template whitespace merged into its first token.
        expect(text.endsWith(content + end), JSON.stringify(text)).toBe(true);
        expect(text.slice(0, text.length - content.length - end.length)).toMatch(/^\s*$/);
      });
    }
  });
});

describe("chat record errors name the record and the fix", () => {
  it("unknown role, no assistant turn, bad shape, no template", async () => {
    const tok = await loadTokenizer(FIXTURES + "chat/chatml");
    const f = new RecordFormatter(tok);
    const bad = (rec: unknown) => {
      try {
        f.format(rec, "sft.jsonl:7");
      } catch (err) {
        expect(err).toBeInstanceOf(TokenizeError);
        return (err as Error).message;
      }
      throw new Error("did not throw");
    };
    expect(bad({ messages: [{ role: "wizard", content: "x" }] })).toMatch(/^sft\.jsonl:7: message 0 has unknown role "wizard". Fix:/);
    expect(bad({ id: "r9", messages: [{ role: "user", content: "x" }] })).toMatch(/^sft\.jsonl:7 \(id r9\): has no assistant turn.*--loss-on all/);
    expect(bad({ messages: [{ role: "user" }] })).toMatch(/message 0 is not \{role: string, content: string\}/);
    expect(bad({ prompt: "x" })).toMatch(/neither a string "text" nor a "messages" list/);
    expect(bad([1])).toMatch(/not a JSON object/);
    const tik = new RecordFormatter(await loadTokenizer("cl100k_base"));
    expect(() => tik.format({ messages: [{ role: "user", content: "x" }] }, "a:1")).toThrow(/has no chat_template. Fix: pass --chat-template chatml/);
    expect(() => new RecordFormatter(tok, { chatTemplate: "{% for %}" })).toThrow(/chat template does not parse/);
    const raising = new RecordFormatter(tok, { chatTemplate: "{{ raise_exception('roles must alternate') }}" });
    expect(() => raising.format({ messages: [{ role: "assistant", content: "x" }] }, "a:2")).toThrow(/a:2: the chat template failed to render \(roles must alternate\)/);
  });

  it("chatml for tiktoken encodings; plain text gets EOS; loss on all", async () => {
    const tok = await loadTokenizer("cl100k_base");
    const f = new RecordFormatter(tok, { chatTemplate: "chatml" });
    const { ids, labels } = f.format({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello there" }] }, "a:1");
    const trained = Array.from(labels).filter((l) => l !== IGNORE_INDEX);
    expect(tok.decode(trained)).toBe("hello there<|im_end|>\n");
    expect(ids.length).toBeGreaterThan(trained.length);
    const text = f.format({ text: "hello world" }, "a:2");
    expect(Array.from(text.ids)).toEqual([15339, 1917, 100257]);
    expect(Array.from(text.labels)).toEqual([15339, 1917, 100257]);
  });

  it("models without byte offsets (WordPiece) still mask by segments", async () => {
    const tok = await loadTokenizer(FIXTURES + "tokenizers/wordpiece");
    const f = new RecordFormatter(tok, { chatTemplate: "{% for m in messages %}[{{ m.role }}] {{ m.content }} {% endfor %}" });
    const { ids, labels } = f.format({ messages: [{ role: "user", content: "what time" }, { role: "assistant", content: "noon today" }] }, "a:1");
    const trained = Array.from(labels).filter((l) => l !== IGNORE_INDEX);
    expect(tok.decode(trained)).toContain("noon today");
    expect(tok.decode(trained)).not.toContain("what");
    expect(ids.length).toBe(labels.length);
  });
});
