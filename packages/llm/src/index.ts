/**
 * @nexa/llm — OpenAI-compatible client (concurrency, rate limits, retries, cache), prompt
 * templates, LLM judges, evaluation metrics, and a local stand-in server for tests.
 */
export * from "./metrics/index.js";
