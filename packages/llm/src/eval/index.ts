export * from "./assertions.js";
export * from "./bootstrap.js";
export * from "./endpoint-client.js";
export * from "./run-evaluation.js";
export * from "./compare-runs.js";
