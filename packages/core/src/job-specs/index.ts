export * from "./command.js";
export * from "./audit.js";
export * from "./llm.js";
export * from "./train-deploy.js";
