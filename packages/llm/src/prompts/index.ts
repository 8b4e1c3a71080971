export * from "./prompt-template.js";
