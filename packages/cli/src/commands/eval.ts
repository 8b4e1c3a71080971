import type { Command } from "commander";

/** Registers `nexa eval run|compare` on the root program. */
export function registerEvalCommands(_program: Command): void {}
