import { z } from "zod";

/** A chat message as the OpenAI API takes it (text content; parts for multimodal are passed through). */
export const ChatMessage = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string() })), z.null()]),
  name: z.string().optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/** A JSON schema response format (structured output). */
export interface JsonSchemaFormat {
  type: "json_schema";
  json_schema: { name: string; schema: Record<string, unknown>; strict?: boolean; description?: string };
}

/** The body of `POST /chat/completions` (what Forge uses of it; other fields pass through). */
export interface ChatRequest {
  model?: string;
  messages: ChatMessage[];
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  seed?: number;
  stop?: string | string[];
  n?: number;
  logprobs?: boolean;
  top_logprobs?: number;
  response_format?: { type: "text" } | { type: "json_object" } | JsonSchemaFormat;
  [extra: string]: unknown;
}

/** The body of `POST /completions`. */
export interface CompletionRequest {
  model?: string;
  prompt: string | string[];
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
  stop?: string | string[];
  n?: number;
  /** Number of top log-probabilities per token (0 = only the sampled token's). */
  logprobs?: number;
  /** Return the prompt in the reply (with its log-probabilities, when `logprobs` is set). */
  echo?: boolean;
  [extra: string]: unknown;
}

const TopLogprob = z.looseObject({ token: z.string(), logprob: z.number(), bytes: z.array(z.number()).nullish() });

/** One token's log-probability in a chat reply. */
export const TokenLogprob = z.looseObject({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.number()).nullish(),
  top_logprobs: z.array(TopLogprob).default([]),
});
export type TokenLogprob = z.infer<typeof TokenLogprob>;

/** Token usage as reported by the server. */
export const CompletionUsage = z.looseObject({
  prompt_tokens: z.number().int().nonnegative().default(0),
  completion_tokens: z.number().int().nonnegative().default(0),
  total_tokens: z.number().int().nonnegative().optional(),
});
export type CompletionUsage = z.infer<typeof CompletionUsage>;

/** A `chat.completion` reply. */
export const ChatCompletion = z.looseObject({
  id: z.string().optional(),
  model: z.string().optional(),
  created: z.number().optional(),
  choices: z
    .array(
      z.looseObject({
        index: z.number().int().default(0),
        message: z.looseObject({
          role: z.string().default("assistant"),
          content: z.string().nullable().default(null),
          refusal: z.string().nullish(),
          tool_calls: z.array(z.unknown()).optional(),
        }),
        finish_reason: z.string().nullable().default(null),
        logprobs: z.looseObject({ content: z.array(TokenLogprob).nullable().default(null) }).nullish(),
      }),
    )
    .min(1),
  usage: CompletionUsage.nullish(),
});
export type ChatCompletion = z.infer<typeof ChatCompletion>;

/** A `chat.completion.chunk` of a streamed reply. */
export const ChatCompletionChunk = z.looseObject({
  id: z.string().optional(),
  model: z.string().optional(),
  choices: z
    .array(
      z.looseObject({
        index: z.number().int().default(0),
        delta: z.looseObject({ role: z.string().optional(), content: z.string().nullish() }).default({}),
        finish_reason: z.string().nullish(),
        logprobs: z.looseObject({ content: z.array(TokenLogprob).nullable().default(null) }).nullish(),
      }),
    )
    .default([]),
  usage: CompletionUsage.nullish(),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunk>;

/** A `text_completion` reply. */
export const TextCompletion = z.looseObject({
  id: z.string().optional(),
  model: z.string().optional(),
  choices: z
    .array(
      z.looseObject({
        index: z.number().int().default(0),
        text: z.string(),
        finish_reason: z.string().nullable().default(null),
        logprobs: z
          .looseObject({
            tokens: z.array(z.string()),
            token_logprobs: z.array(z.number().nullable()),
            top_logprobs: z.array(z.record(z.string(), z.number()).nullable()).nullish(),
            text_offset: z.array(z.number()),
          })
          .nullish(),
      }),
    )
    .min(1),
  usage: CompletionUsage.nullish(),
});
export type TextCompletion = z.infer<typeof TextCompletion>;

/** The error body OpenAI-compatible servers send. */
export const ErrorBody = z.looseObject({
  error: z.union([z.looseObject({ message: z.string().optional(), type: z.string().nullish(), code: z.unknown().optional() }), z.string()]),
});
