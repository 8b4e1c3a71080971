import type { JobType } from "@nexa/core";
import type { Handler } from "../handler.js";
import { commandHandler } from "./command.js";

/** Job type → the handler that runs it. A worker accepts only the types it has a handler for. */
export type HandlerRegistry = Partial<Record<JobType, Handler>>;

/**
 * The handlers this worker build ships. Each job type's handler lives in its own file in this
 * folder and is added here.
 */
export const builtinHandlers: HandlerRegistry = {
  command: commandHandler,
};

export { commandHandler, processEnv } from "./command.js";
