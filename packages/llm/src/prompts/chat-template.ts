import type { ChatMessage } from "../client/types.js";

/** Built-in chat templates for endpoints that only complete text (base models, raw `/completions`). */
export type ChatTemplateName = "chatml" | "llama3" | "plain";

/** A rendered prompt and the stop sequences that end the assistant's turn. */
export interface RenderedChat {
  prompt: string;
  stop: string[];
}

function text(m: ChatMessage): string {
  return typeof m.content === "string" ? m.content : m.content === null ? "" : JSON.stringify(m.content);
}

/**
 * Renders chat messages into one prompt string in a model family's chat format, ending where the
 * assistant's reply begins, with the stop sequences that close that reply.
 *
 * @example
 * renderChatTemplate([{ role: "user", content: "hi" }], "chatml").prompt
 * // → "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
 */
export function renderChatTemplate(messages: readonly ChatMessage[], template: ChatTemplateName): RenderedChat {
  switch (template) {
    case "chatml":
      return {
        prompt: `${messages.map((m) => `<|im_start|>${m.role}\n${text(m)}<|im_end|>\n`).join("")}<|im_start|>assistant\n`,
        stop: ["<|im_end|>"],
      };
    case "llama3":
      return {
        prompt: `<|begin_of_text|>${messages.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${text(m)}<|eot_id|>`).join("")}<|start_header_id|>assistant<|end_header_id|>\n\n`,
        stop: ["<|eot_id|>"],
      };
    case "plain": {
      let s = "";
      for (const m of messages) {
        if (m.role === "system" || m.role === "developer") s += `${text(m)}\n\n`;
        else s += `${m.role === "assistant" ? "Assistant" : "User"}: ${text(m)}\n`;
      }
      return { prompt: `${s}Assistant:`, stop: ["\nUser:"] };
    }
    default: {
      const never: never = template;
      throw new RangeError(`unknown chat template ${String(never)}`);
    }
  }
}
