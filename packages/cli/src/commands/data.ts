import type { Command } from "commander";

/** Registers `nexa data audit|dedup|shuffle|split|shard|stats` on the `data` command. */
export function registerDataCommands(_data: Command): void {}
