import { z } from "zod";
import { DataRef } from "../common.js";
import { CheckpointPolicy } from "./command.js";

/** Data stage of a `train` job: tokenize and pack (`@nexa/data` packDataset; `nexa data pack` takes the same options). */
export const PackOptions = z.strictObject({
  /** `cl100k_base`, `o200k_base`, or a folder / artifact holding a Hugging Face `tokenizer.json`. */
  tokenizer: z.string().min(1).default("cl100k_base"),
  seq_len: z.number().int().min(8).max(1_048_576).default(2048),
  /** Best-fit decreasing, first-fit decreasing, concatenate-and-chunk, or one document per sequence. */
  strategy: z.enum(["bfd", "ffd", "greedy", "pad"]).default("bfd"),
  /** Loss on assistant turns only (`assistant`) or on every token (`all`). */
  loss_on: z.enum(["assistant", "all"]).default("assistant"),
  /** Documents longer than `seq_len`: cut into pieces, or dropped. */
  overlong: z.enum(["split", "drop"]).default("split"),
  /** Jinja chat template source, or `chatml`; by default the tokenizer's own `chat_template`. */
  chat_template: z.string().min(1).optional(),
  /** Seed of the packed sequence order. */
  seed: z.number().int().default(0),
  /** Output arrays: memory-mappable `.npy` files, or one Parquet file. */
  format: z.enum(["npy", "parquet"]).default("npy"),
});
export type PackOptions = z.infer<typeof PackOptions>;

/** The `train` job. */
export const TrainSpec = z.strictObject({
  dataset: DataRef,
  backend: z.enum(["torch", "axolotl", "command"]).default("torch"),
  /** Hugging Face model config (as an object) or a local path / artifact of weights. */
  model: z.strictObject({
    config: z.record(z.string(), z.unknown()).optional(),
    weights: z.union([DataRef, z.string()]).optional(),
    lora: z.strictObject({ r: z.number().int().positive(), alpha: z.number().positive(), dropout: z.number().min(0).max(1).default(0) }).optional(),
    precision: z.enum(["fp32", "bf16", "fp16"]).default("bf16"),
  }),
  pack: PackOptions.optional(),
  hyperparameters: z
    .strictObject({
      lr: z.number().positive().default(3e-4),
      warmup_steps: z.number().int().nonnegative().default(0),
      max_steps: z.number().int().positive().optional(),
      epochs: z.number().positive().default(1),
      micro_batch_size: z.number().int().positive().default(1),
      grad_accum: z.number().int().positive().default(1),
      weight_decay: z.number().nonnegative().default(0),
      eval_every: z.number().int().positive().optional(),
      checkpoint_every: z.number().int().positive().optional(),
      seed: z.number().int().default(0),
    })
    .optional(),
  /** For `backend: command`: the trainer to run under the process contract. */
  argv: z.array(z.string()).min(1).optional(),
  env: z.record(z.string(), z.string()).optional(),
  checkpoint: CheckpointPolicy.optional(),
});
export type TrainSpec = z.infer<typeof TrainSpec>;

/** The `deploy` job: serve a model artifact. */
export const DeploySpec = z.strictObject({
  model: DataRef,
  /** Deployment name: the model name clients use through the gateway. */
  name: z.string().min(1).max(128),
  backend: z.enum(["auto", "vllm", "torch"]).default("auto"),
  port: z.number().int().min(0).max(65_535).default(0),
  health_timeout_s: z.number().positive().default(600),
  args: z.array(z.string()).optional(),
});
export type DeploySpec = z.infer<typeof DeploySpec>;
