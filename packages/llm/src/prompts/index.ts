export * from "./prompt-template.js";
export * from "./chat-template.js";
