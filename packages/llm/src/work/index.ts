export * from "./jsonl.js";
export * from "./progress-store.js";
export * from "./process-items.js";
export * from "./near-duplicates.js";
