/**
 * @nexa/llm — OpenAI-compatible client (concurrency, rate limits, retries, cache), prompt
 * templates, LLM judges, evaluation metrics and runs, and a local stand-in server for tests.
 */
export * from "./errors.js";
export * from "./client/index.js";
export * from "./metrics/index.js";
export * from "./prompts/index.js";
export * from "./judges/index.js";
export * from "./work/index.js";
export * from "./eval/index.js";
export * from "./testkit/index.js";
