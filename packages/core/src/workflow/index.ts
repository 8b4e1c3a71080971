export * from "./schema.js";
export * from "./expressions.js";
export * from "./parse.js";
