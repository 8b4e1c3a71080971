import { z } from "zod";
import { DataRef } from "../common.js";

/** Input name: a relative file name under `$NEXA_INPUTS_DIR` (no `..`, no leading `/`). */
export const InputName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._\-/]+$/, "a relative path of letters, digits, '.', '_', '-', '/' without '..'");

/** Inputs of a process job: each materialised at `$NEXA_INPUTS_DIR/<name>`. */
export const JobInputs = z.record(InputName, DataRef);
export type JobInputs = z.infer<typeof JobInputs>;

/** Checkpoint handling for process jobs. */
export const CheckpointPolicy = z.strictObject({
  /** How many complete checkpoints to keep in the blob store. @default 2 */
  keep_last: z.number().int().min(1).max(100).default(2),
});
export type CheckpointPolicy = z.infer<typeof CheckpointPolicy>;

/**
 * The `command` job: run an argv under the process contract (DESIGN.md).
 *
 * @example
 * { argv: ["python", "train.py"], env: { LR: "3e-4" }, inputs: { "data.jsonl": "sha256:…" } }
 */
export const CommandSpec = z.strictObject({
  argv: z.array(z.string()).min(1, "argv needs at least the program to run"),
  /** Environment variables; numbers and booleans (e.g. from workflow expressions) become strings. */
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "environment variable names are [A-Za-z_][A-Za-z0-9_]*"),
      z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v)),
    )
    .optional(),
  inputs: JobInputs.optional(),
  checkpoint: CheckpointPolicy.optional(),
});
export type CommandSpec = z.infer<typeof CommandSpec>;
