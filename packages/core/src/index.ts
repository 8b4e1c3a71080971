/**
 * @nexa/core — the wire contract of Nexa Forge: zod schemas (and their types) for every API body,
 * job specs of every type, error codes, requirement matching, retry decisions and cost math.
 * Browser-safe: no I/O.
 */
export * from "./errors.js";
export * from "./scopes.js";
export * from "./common.js";
export * from "./requirements.js";
export * from "./job-specs/index.js";
export * from "./job.js";
export * from "./resources.js";
export * from "./usage.js";
export * from "./retry.js";
export * from "./workflow/index.js";
export * from "./batch.js";
export * from "./preflight.js";
export * from "./deployments.js";
export * from "./gateway.js";
