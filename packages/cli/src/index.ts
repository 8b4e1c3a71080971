import { Command, CommanderError } from "commander";
import { registerDataCommands } from "./commands/data.js";
import { registerPackCommands } from "./commands/data-pack.js";
import { registerEvalCommands } from "./commands/eval.js";

/** Builds the `nexa` program. */
export function buildProgram(): Command {
  const program = new Command("nexa")
    .description("Nexa Forge — a self-hostable AI foundry: durable jobs, workflows, data, train, evaluate, deploy.")
    .version("0.1.0")
    .showHelpAfterError();
  const data = program.command("data").description("Data engine: audit, dedup, shuffle, split, shard, stats, tokenize, pack.");
  registerDataCommands(data);
  registerPackCommands(data);
  registerEvalCommands(program);
  return program;
}

/**
 * Runs the CLI and resolves to the process exit code.
 *
 * @example
 * process.exitCode = await main(process.argv);
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
}
