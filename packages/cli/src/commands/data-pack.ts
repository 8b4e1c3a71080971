import type { Command } from "commander";

/** Registers `nexa data tokenize|pack|inspect` on the `data` command. */
export function registerPackCommands(_data: Command): void {}
