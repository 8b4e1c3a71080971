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

/** LoRA adapters on the model's linear layers (the recipe uses `peft`). */
export const LoraOptions = z.strictObject({
  r: z.number().int().positive(),
  alpha: z.number().positive(),
  dropout: z.number().min(0).max(1).default(0),
  /** Module names to adapt. @default every linear layer but the output head ("all-linear") */
  target_modules: z.array(z.string().min(1)).min(1).optional(),
});
export type LoraOptions = z.infer<typeof LoraOptions>;

/** Optimisation settings of a `train` job (the `torch` recipe reads them; Axolotl's config is written from them). */
export const TrainHyperparameters = z.strictObject({
  lr: z.number().positive().default(3e-4),
  /** Linear warm-up steps before the cosine decay. @default 0 */
  warmup_steps: z.number().int().nonnegative().default(0),
  /** Optimizer steps; by default `epochs` over the packed sequences. */
  max_steps: z.number().int().positive().optional(),
  epochs: z.number().positive().default(1),
  /** Sequences per forward pass per GPU. @default 1 */
  micro_batch_size: z.number().int().positive().default(1),
  /** Micro-batches per optimizer step. @default 1 */
  grad_accum: z.number().int().positive().default(1),
  weight_decay: z.number().nonnegative().default(0),
  /** The cosine ends at `lr · min_lr_ratio`. @default 0.1 */
  min_lr_ratio: z.number().min(0).max(1).default(0.1),
  /** Gradient clipping by global norm. @default 1 */
  max_grad_norm: z.number().positive().default(1),
  /** Evaluate every this many steps on a held-out slice of the packed sequences. */
  eval_every: z.number().int().positive().optional(),
  /** Share of the packed sequences held out for evaluation when `eval_every` is set. @default 0.05 */
  eval_fraction: z.number().gt(0).lt(1).default(0.05),
  /** Write a checkpoint every this many steps (one is always written when stopped). */
  checkpoint_every: z.number().int().positive().optional(),
  /** Activation (gradient) checkpointing: less memory, about a third more compute. @default false */
  gradient_checkpointing: z.boolean().default(false),
  seed: z.number().int().default(0),
});
export type TrainHyperparameters = z.infer<typeof TrainHyperparameters>;

/**
 * The `train` job: pack a dataset (the data stage) and run a trainer on it.
 *
 * @example
 * {
 *   dataset: "art_corpus",
 *   model: { config: { model_type: "gpt2", n_layer: 2, n_embd: 64, n_head: 4, vocab_size: 8192 }, precision: "fp32" },
 *   pack: { tokenizer: "art_tokenizer", seq_len: 128, loss_on: "all" },
 *   hyperparameters: { lr: 3e-3, max_steps: 40, micro_batch_size: 4, checkpoint_every: 10 },
 * }
 */
export const TrainSpec = z.strictObject({
  /** A JSONL dataset (`{text}` or `{messages}` records). */
  dataset: DataRef,
  /** `torch`: the bundled recipe; `axolotl`: Axolotl with a config written from this spec; `command`: `argv` under the process contract. */
  backend: z.enum(["torch", "axolotl", "command"]).default("torch"),
  /** Hugging Face model config (as an object) or a local path / artifact of weights. */
  model: z.strictObject({
    /** A Hugging Face config (`model_type` and sizes) for a random init; with `weights`, overrides of the saved config. */
    config: z.record(z.string(), z.unknown()).optional(),
    /** A folder on the worker, or an artifact / digest of a `model.tar` (as a `train` job outputs). */
    weights: z.union([DataRef, z.string()]).optional(),
    lora: LoraOptions.optional(),
    precision: z.enum(["fp32", "bf16", "fp16"]).default("bf16"),
  }),
  /** The data stage. `tokenizer` may also be an artifact id or digest of a Hugging Face `tokenizer.json`. */
  pack: PackOptions.optional(),
  /** Record fields the data stage reads. */
  fields: z
    .strictObject({
      text: z.string().min(1).default("text"),
      messages: z.string().min(1).default("messages"),
    })
    .optional(),
  hyperparameters: TrainHyperparameters.optional(),
  /** For `backend: command`: the trainer to run under the process contract (`NEXA_PACKED_DIR` holds the packed data). */
  argv: z.array(z.string()).min(1).optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v))).optional(),
  checkpoint: CheckpointPolicy.optional(),
});
export type TrainSpec = z.infer<typeof TrainSpec>;

/** The `deploy` job: serve a model artifact. */
export const DeploySpec = z.strictObject({
  /** A `model.tar` artifact / digest (as a `train` job outputs). */
  model: DataRef,
  /** Deployment name: the model name clients use through the gateway. */
  name: z.string().min(1).max(128),
  /** `auto`: vLLM where it is installed, else the reference PyTorch server. @default "auto" */
  backend: z.enum(["auto", "vllm", "torch"]).default("auto"),
  /** Port to listen on; 0 picks a free one. @default 0 */
  port: z.number().int().min(0).max(65_535).default(0),
  /** Address to bind. @default "127.0.0.1" */
  host: z.string().min(1).default("127.0.0.1"),
  health_timeout_s: z.number().positive().default(600),
  /** Extra arguments for the server (`vllm serve` or `serve.py`). */
  args: z.array(z.string()).optional(),
  /**
   * The deployment this job serves. Set by the control plane when it starts a deployment again
   * on another worker; omitted, the id derives from the job id (see `deploymentIdOf`).
   */
  deployment_id: z.string().regex(/^dep_[0-9a-z]{1,64}$/, "a deployment id (dep_…)").optional(),
});
export type DeploySpec = z.infer<typeof DeploySpec>;
