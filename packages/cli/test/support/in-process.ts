import { Command } from "commander";
import { registerWorkflowCommands } from "../../src/commands/workflows.js";

/** What an in-process CLI run printed and returned. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs `nexa <args>` in this process with the workflow commands against a server, capturing stdout,
 * stderr and the exit code — the CLI's own code path, without a child process per call.
 */
export async function runWorkflowCli(target: { url: string; adminKey?: string | undefined }, args: string[]): Promise<CliResult> {
  const program = new Command("nexa").exitOverride();
  registerWorkflowCommands(program);
  return captureCli(async () => {
    await program.parseAsync(["node", "nexa", ...args, "--url", target.url, "--api-key", target.adminKey!]);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  });
}

/** Runs a CLI invocation that resolves to its exit code, capturing what it prints (a throw is exit code 1). */
export async function captureCli(run: () => Promise<number>): Promise<CliResult> {
  let out = "";
  let err = "";
  const { write: w1 } = process.stdout;
  const { write: w2 } = process.stderr;
  process.stdout.write = ((c: string | Uint8Array) => ((out += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((err += String(c)), true)) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code = 0;
  try {
    code = await run();
  } catch (e) {
    err += (e as Error).message;
    code = 1;
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
    process.exitCode = undefined;
  }
  return { code, out, err };
}
