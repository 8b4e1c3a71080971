import { Command, CommanderError } from "commander";
import { registerDataCommands } from "./commands/data.js";
import { registerPackCommands } from "./commands/data-pack.js";
import { registerEvalCommands } from "./commands/eval.js";
import { registerAdminCommands } from "./commands/admin.js";
import { registerControlPlaneCommands } from "./commands/control-plane.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerGatewayCommands } from "./commands/gateway.js";
import { registerDeploymentCommands } from "./commands/deployments.js";
import { registerJobCommands } from "./commands/jobs.js";
import { registerPreflightCommand } from "./commands/preflight.js";
import { registerWorkerCommand } from "./commands/worker.js";
import { registerWorkflowCommands } from "./commands/workflows.js";
import { ForgeError } from "@nexa/core";
import pc from "picocolors";

/** Builds the `nexa` program. */
export function buildProgram(): Command {
  const program = new Command("nexa")
    .description("Nexa Forge — a self-hostable AI foundry: durable jobs, workflows, data, train, evaluate, deploy.")
    .version("0.1.0")
    .showHelpAfterError();
  registerControlPlaneCommands(program);
  registerWorkerCommand(program);
  registerJobCommands(program);
  registerPreflightCommand(program);
  registerWorkflowCommands(program);
  registerDeploymentCommands(program);
  registerAdminCommands(program);
  registerGatewayCommands(program);
  registerDemoCommand(program);
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
    printError(err);
    return 1;
  }
}

/** Prints an error the way a user needs it: the message, and for 422s each failing field. */
export function printError(err: unknown): void {
  if (err instanceof ForgeError) {
    process.stderr.write(`${pc.red("error")}: ${err.message}${err.code !== "invalid_request" ? pc.dim(` (${err.code})`) : ""}\n`);
    if (Array.isArray(err.details)) {
      for (const d of err.details as { path?: string; message?: string }[]) if (d.path) process.stderr.write(`  ${pc.bold(d.path)}: ${d.message ?? ""}\n`);
    }
    if (err.code === "unavailable") process.stderr.write(pc.dim("  is the control plane running? start one with `nexa up`, or pass --url\n"));
    if (err.code === "unauthenticated") process.stderr.write(pc.dim("  pass --api-key or set NEXA_API_KEY\n"));
    return;
  }
  process.stderr.write(`${pc.red("error")}: ${err instanceof Error ? err.message : String(err)}\n`);
}
