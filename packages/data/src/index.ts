/** @nexa/data — streaming data engine (audit: filters, dedup, PII, shuffle/split/shard) and tokenize/pack. */
export * from "./engine/index.js";
export * from "./tokenize/index.js";
