import type { JobType } from "@nexa/core";
import type { Handler } from "../handler.js";
import { auditHandler } from "./audit.js";
import { commandHandler } from "./command.js";
import { deployHandler } from "./deploy.js";
import { trainHandler } from "./train.js";
import { distillHandler } from "./distill.js";
import { evaluateHandler } from "./evaluate.js";
import { generateHandler } from "./generate.js";
import { judgeHandler } from "./judge.js";

/** Job type → the handler that runs it. A worker accepts only the types it has a handler for. */
export type HandlerRegistry = Partial<Record<JobType, Handler>>;

/** `audit` runs the data engine, or the LLM judge when the spec asks for it (`options.llm_judge` / `judge`). */
const auditOrJudge: Handler = (ctx) => {
  const spec = ctx.job.spec as { judge?: unknown; options?: { llm_judge?: unknown }; steps?: string[] };
  if (spec.judge !== undefined || spec.options?.llm_judge !== undefined || spec.steps?.includes("llm_judge")) return judgeHandler(ctx);
  return auditHandler(ctx);
};

/**
 * The handlers this worker build ships. Each job type's handler lives in its own file in this
 * folder and is added here.
 */
export const builtinHandlers: HandlerRegistry = {
  command: commandHandler,
  audit: auditOrJudge,
  generate: generateHandler,
  distill: distillHandler,
  evaluate: evaluateHandler,
  train: trainHandler,
  deploy: deployHandler,
};

export { commandHandler, processEnv } from "./command.js";
export { auditHandler } from "./audit.js";
export { generateHandler } from "./generate.js";
export { distillHandler } from "./distill.js";
export { evaluateHandler } from "./evaluate.js";
export { judgeHandler } from "./judge.js";
export { trainHandler } from "./train.js";
export { deployHandler } from "./deploy.js";
