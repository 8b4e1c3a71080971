import { z } from "zod";
import { DEFAULT_PRICES, gpuHourPrice, type PriceTable } from "./usage.js";

/** The outcome of one preflight check. */
export const PreflightStatus = z.enum(["pass", "warn", "fail"]);
export type PreflightStatus = z.infer<typeof PreflightStatus>;

/** One preflight check: `{name, status, reason}` (the reason says why, with the figures). */
export const PreflightCheck = z.object({
  name: z.string(),
  status: PreflightStatus,
  reason: z.string(),
});
export type PreflightCheck = z.infer<typeof PreflightCheck>;

const GIB = 1024 ** 3;

/** The sizes of a decoder-only transformer, read from a Hugging Face config. */
export interface ModelShape {
  /** `gpt2` (learned positions, Conv1D with biases, 4·H MLP) or `llama` (rotary, gated MLP, RMSNorm). */
  family: "gpt2" | "llama";
  vocab: number;
  hidden: number;
  layers: number;
  /** MLP inner width. */
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Learned position embeddings (GPT-2's `n_positions`); 0 for rotary models. */
  positions: number;
  tiedEmbeddings: boolean;
  /** Biases on q, k, v (Qwen2). */
  qkvBias: boolean;
}

const num = (c: Record<string, unknown>, ...keys: string[]): number | undefined => {
  for (const k of keys) {
    const v = c[k];
    if (typeof v === "number" && Number.isFinite(v)) return v;
  }
  return undefined;
};

/**
 * Reads the shape of a model from its Hugging Face config, with the defaults `transformers`
 * applies for that `model_type` (GPT-2: 50,257 × 768 × 12 layers; Llama: 32,000 × 4,096 × 32).
 * Unknown `model_type`s are read as Llama-style (gated MLP, RMSNorm), the shape of most open models.
 *
 * @example
 * modelShape({ model_type: "gpt2" }).hidden; // 768
 */
export function modelShape(config: Record<string, unknown>): ModelShape {
  const type = typeof config.model_type === "string" ? config.model_type : "llama";
  if (type === "gpt2") {
    const hidden = num(config, "n_embd", "hidden_size") ?? 768;
    const heads = num(config, "n_head", "num_attention_heads") ?? 12;
    return {
      family: "gpt2",
      vocab: num(config, "vocab_size") ?? 50257,
      hidden,
      layers: num(config, "n_layer", "num_hidden_layers") ?? 12,
      intermediate: num(config, "n_inner") ?? 4 * hidden,
      heads,
      kvHeads: heads,
      headDim: hidden / heads,
      positions: num(config, "n_positions", "max_position_embeddings") ?? 1024,
      tiedEmbeddings: config.tie_word_embeddings !== false,
      qkvBias: true,
    };
  }
  const hidden = num(config, "hidden_size") ?? 4096;
  const heads = num(config, "num_attention_heads") ?? 32;
  return {
    family: "llama",
    vocab: num(config, "vocab_size") ?? 32000,
    hidden,
    layers: num(config, "num_hidden_layers") ?? 32,
    intermediate: num(config, "intermediate_size") ?? 11008,
    heads,
    kvHeads: num(config, "num_key_value_heads") ?? heads,
    headDim: num(config, "head_dim") ?? hidden / heads,
    positions: 0,
    tiedEmbeddings: config.tie_word_embeddings === true,
    qkvBias: type === "qwen2" || config.attention_bias === true,
  };
}

/**
 * Parameter count of a causal LM from its Hugging Face config — the number
 * `sum(p.numel() for p in model.parameters())` gives in `transformers` (tied embeddings counted once).
 *
 * @example
 * modelParameterCount({ model_type: "gpt2" }); // 124_439_808 (GPT-2 small)
 */
export function modelParameterCount(config: Record<string, unknown>): number {
  const s = modelShape(config);
  const H = s.hidden;
  const kv = s.kvHeads * s.headDim;
  const q = s.heads * s.headDim;
  const embed = s.vocab * H + s.positions * H;
  const head = s.tiedEmbeddings ? 0 : s.vocab * H;
  let layer: number;
  let finalNorm: number;
  if (s.family === "gpt2") {
    // ln_1, c_attn (H → 3H, bias), c_proj (H → H, bias), ln_2, c_fc (H → I, bias), c_proj (I → H, bias).
    layer = 2 * H + (H * 3 * H + 3 * H) + (H * H + H) + 2 * H + (H * s.intermediate + s.intermediate) + (s.intermediate * H + H);
    finalNorm = 2 * H;
  } else {
    const attn = H * q + 2 * H * kv + q * H + (s.qkvBias ? q + 2 * kv : 0);
    layer = attn + 3 * H * s.intermediate + 2 * H;
    finalNorm = H;
  }
  return embed + s.layers * layer + finalNorm + head;
}

/** LoRA options as in a train spec: rank and (optionally) the module names adapted. */
export interface LoraShape {
  r: number;
  /** @default every linear layer of the blocks ("all-linear") */
  target_modules?: readonly string[];
}

/**
 * Trainable parameters of LoRA adapters: `r · (in + out)` for each adapted linear layer.
 * "all-linear" adapts every linear layer of the blocks (not the output head), as `peft` does.
 *
 * @example
 * loraParameterCount({ model_type: "llama" }, { r: 8 }); // 19_988_480 for Llama-2 7B
 */
export function loraParameterCount(config: Record<string, unknown>, lora: LoraShape): number {
  const s = modelShape(config);
  const H = s.hidden;
  const I = s.intermediate;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const layers: Record<string, [number, number]> =
    s.family === "gpt2"
      ? { c_attn: [H, 3 * H], "attn.c_proj": [H, H], c_fc: [H, I], "mlp.c_proj": [I, H] }
      : { q_proj: [H, q], k_proj: [H, kv], v_proj: [H, kv], o_proj: [q, H], gate_proj: [H, I], up_proj: [H, I], down_proj: [I, H] };
  const wanted = lora.target_modules;
  let perLayer = 0;
  for (const [name, [i, o]] of Object.entries(layers)) {
    const short = name.split(".").pop() ?? name;
    if (wanted === undefined || wanted.includes(name) || wanted.includes(short)) perLayer += lora.r * (i + o);
  }
  return s.layers * perLayer;
}

/** What {@link estimateTrainingMemory} needs. */
export interface TrainingMemoryOptions {
  /** Hugging Face model config. */
  config: Record<string, unknown>;
  /** @default "bf16" */
  precision?: "fp32" | "bf16" | "fp16";
  /** LoRA adapters instead of a full fine-tune. */
  lora?: LoraShape;
  seqLen: number;
  /** Sequences per forward pass per GPU. @default 1 */
  microBatch?: number;
  /** @default false */
  gradientCheckpointing?: boolean;
  /** Attention without the `seq_len²` score matrix in memory (flash / memory-efficient SDPA). @default true */
  flashAttention?: boolean;
}

/** A GPU-memory estimate, per GPU (data parallel: every GPU holds the whole model). */
export interface TrainingMemoryEstimate {
  parameters: number;
  trainableParameters: number;
  /** Bytes, per part. */
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  /** CUDA context and allocator slack. */
  overhead: number;
  total: number;
}

/**
 * GPU memory of training one data-parallel replica, in bytes:
 * - weights: 4 B/param in fp32; 2 B/param in bf16/fp16, plus a 4-byte fp32 master copy of the trainable ones;
 * - gradients: 4 B (fp32) or 2 B per trainable parameter;
 * - AdamW: two fp32 moments, 8 B per trainable parameter;
 * - activations per layer `s·b·H·34` bytes in 16-bit (Korthikanti et al. 2022, without the `5·a·s²·b`
 *   attention-score term when `flashAttention`), doubled in fp32; with gradient checkpointing only the
 *   layer inputs (`2·s·b·H` per layer) plus one layer's activations; plus the logits and their gradient
 *   (`s·b·V`, fp32, twice);
 * - overhead: 1 GiB of CUDA context plus 10% of the rest for fragmentation.
 *
 * @example
 * estimateTrainingMemory({ config: { model_type: "gpt2" }, precision: "bf16", seqLen: 1024, microBatch: 8 }).total / 2 ** 30; // ≈ 9.04
 */
export function estimateTrainingMemory(o: TrainingMemoryOptions): TrainingMemoryEstimate {
  const s = modelShape(o.config);
  const precision = o.precision ?? "bf16";
  const half = precision !== "fp32";
  const P = modelParameterCount(o.config);
  const T = o.lora ? loraParameterCount(o.config, o.lora) : P;
  const b = o.microBatch ?? 1;
  const tokens = o.seqLen * b;
  const weights = half ? 2 * P + 4 * T : 4 * P + (o.lora ? 4 * T : 0);
  const gradients = (half ? 2 : 4) * T;
  const optimizer = 8 * T;
  const actScale = half ? 1 : 2;
  const scores = o.flashAttention === false ? 5 * s.heads * o.seqLen * o.seqLen * b : 0;
  const perLayer = (34 * tokens * s.hidden + scores) * actScale;
  const layerActs = o.gradientCheckpointing ? s.layers * 2 * tokens * s.hidden * actScale + perLayer : s.layers * perLayer;
  const logits = 2 * 4 * tokens * s.vocab;
  const activations = layerActs + logits;
  const sub = weights + gradients + optimizer + activations;
  const overhead = GIB + 0.1 * sub;
  return { parameters: P, trainableParameters: T, weights, gradients, optimizer, activations, overhead, total: sub + overhead };
}

/** A GPU as workers register it (`capabilities.gpus`). */
export interface PreflightGpu {
  name: string;
  memory_gb: number;
}

/** A worker's GPUs, for the fit check. */
export interface PreflightWorker {
  name?: string;
  gpus: readonly PreflightGpu[];
}

/** Share of a GPU's memory above which a fitting estimate still warns. */
const TIGHT_FIT = 0.9;

/**
 * Whether a replica of `bytesPerGpu` fits on some worker with `gpusPerJob` GPUs: `pass` when
 * it fits under 90% of each GPU's memory, `warn` when only above that, `fail` when no worker has
 * enough GPUs that large (or none has GPUs).
 */
export function checkGpuFit(bytesPerGpu: number, workers: readonly PreflightWorker[], gpusPerJob = 1): PreflightCheck {
  const need = bytesPerGpu / GIB;
  const needS = `${need.toFixed(1)} GiB per GPU`;
  const withGpus = workers.filter((w) => w.gpus.length > 0);
  if (withGpus.length === 0) return { name: "gpu_memory", status: "fail", reason: `needs ${needS} on ${gpusPerJob} GPU(s); no registered worker has a GPU` };
  let best: { worker: PreflightWorker; gpu: PreflightGpu; share: number } | null = null;
  let largest: PreflightGpu | null = null;
  for (const w of withGpus) {
    const big = [...w.gpus].sort((x, y) => y.memory_gb - x.memory_gb);
    const nth = big[gpusPerJob - 1];
    for (const g of big) if (!largest || g.memory_gb > largest.memory_gb) largest = g;
    if (nth === undefined) continue;
    // memory_gb is reported in GiB by nvidia-smi-derived discovery.
    const share = need / nth.memory_gb;
    if (share <= 1 && (!best || share < best.share)) best = { worker: w, gpu: nth, share };
  }
  if (!best) {
    const most = Math.max(...withGpus.map((w) => w.gpus.length));
    const reason =
      most < gpusPerJob
        ? `needs ${gpusPerJob} GPUs on one worker; the most any worker has is ${most}`
        : `needs ${needS}; the largest GPU has ${largest?.memory_gb ?? 0} GiB (${largest?.name ?? "?"}): use LoRA, gradient checkpointing, a smaller micro-batch or larger GPUs`;
    return { name: "gpu_memory", status: "fail", reason };
  }
  const where = `${best.gpu.name} (${best.gpu.memory_gb} GiB)${best.worker.name ? ` on ${best.worker.name}` : ""}`;
  const pct = `${(best.share * 100).toFixed(0)}%`;
  return best.share > TIGHT_FIT
    ? { name: "gpu_memory", status: "warn", reason: `${needS} fits ${where} with little headroom (${pct} of its memory)` }
    : { name: "gpu_memory", status: "pass", reason: `${needS} fits ${where} (${pct} of its memory)` };
}

/** Dense bf16 peak TFLOP/s by GPU type, matched as a case-insensitive substring of the name (as {@link gpuHourPrice} does). */
export const GPU_PEAK_TFLOPS: Readonly<Record<string, number>> = { H200: 989, H100: 989, A100: 312, L40S: 362, L4: 121, A10: 125, T4: 65, V100: 125 };

/** Peak bf16 TFLOP/s of a GPU by name; 100 for one not in {@link GPU_PEAK_TFLOPS}. */
export function gpuPeakTflops(name: string): number {
  const lower = name.toLowerCase();
  for (const [type, tf] of Object.entries(GPU_PEAK_TFLOPS)) if (lower.includes(type.toLowerCase())) return tf;
  return 100;
}

/** What {@link estimateTrainingTime} needs. */
export interface TrainingTimeOptions {
  /** Tokens the run trains on (sequences × seq_len × epochs, or steps × tokens per step). */
  tokens: number;
  parameters: number;
  /** LoRA: no weight gradients of the frozen base, about 2/3 of the compute. */
  lora?: boolean;
  gpu: string;
  gpus?: number;
  /** Measured throughput in tokens/s for the whole job; overrides the FLOP model. */
  tokensPerS?: number;
  /** Model FLOP utilisation assumed by the FLOP model. @default 0.35 */
  mfu?: number;
  prices?: PriceTable;
}

/** Duration and cost of a training run. */
export interface TrainingTimeEstimate {
  tokensPerS: number;
  seconds: number;
  costUsd: number;
}

/**
 * Duration from `6 · parameters` FLOPs per trained token (`4 ·` with LoRA) at `mfu` of the GPUs'
 * peak (or a given throughput), and cost from the price table's hourly GPU price.
 *
 * @example
 * estimateTrainingTime({ tokens: 1e9, parameters: 124_439_808, gpu: "NVIDIA H100 80GB HBM3" });
 * // tokensPerS ≈ 463,611; seconds ≈ 2157; costUsd ≈ 1.50 at $2.5/h
 */
export function estimateTrainingTime(o: TrainingTimeOptions): TrainingTimeEstimate {
  const n = o.gpus ?? 1;
  const flopsPerToken = (o.lora ? 4 : 6) * o.parameters;
  const tokensPerS = o.tokensPerS ?? (n * gpuPeakTflops(o.gpu) * 1e12 * (o.mfu ?? 0.35)) / flopsPerToken;
  const seconds = o.tokens / tokensPerS;
  const costUsd = (seconds / 3600) * n * gpuHourPrice(o.prices ?? DEFAULT_PRICES, o.gpu);
  return { tokensPerS, seconds, costUsd };
}

/** What {@link preflightTrain} checks: a train job's model and data against the fleet. */
export interface PreflightTrainOptions extends TrainingMemoryOptions {
  workers: readonly PreflightWorker[];
  /** GPUs per job (`requirements.gpus`). @default 1 */
  gpus?: number;
  /** Tokens to train on. */
  tokens: number;
  tokensPerS?: number;
  prices?: PriceTable;
  limits?: { max_runtime_s?: number; max_cost_usd?: number };
}

/** The result of {@link preflightTrain}: the checks, and the figures behind them. */
export interface PreflightTrainResult {
  checks: PreflightCheck[];
  memory: TrainingMemoryEstimate;
  time: TrainingTimeEstimate | null;
}

/**
 * The model-side preflight of a `train` job: GPU memory against the registered workers, then
 * duration and cost on the GPU it would run on, against `limits.max_runtime_s` / `max_cost_usd`
 * (over a limit: `warn` — the guardrail would stop the run early; it still can checkpoint).
 *
 * @example
 * const { checks } = preflightTrain({ config: { model_type: "gpt2" }, seqLen: 1024, microBatch: 8, tokens: 1e9,
 *   workers: [{ gpus: [{ name: "NVIDIA L4", memory_gb: 24 }] }] });
 * checks.map((c) => c.status); // ["pass", "pass", "pass"]
 */
export function preflightTrain(o: PreflightTrainOptions): PreflightTrainResult {
  const memory = estimateTrainingMemory(o);
  const n = o.gpus ?? 1;
  const fit = checkGpuFit(memory.total, o.workers, n);
  const checks: PreflightCheck[] = [fit];
  if (fit.status === "fail") return { checks, memory, time: null };
  // The GPU the fit check found: the smallest that holds the replica.
  const gpu = smallestFitting(memory.total, o.workers, n) ?? "unknown GPU";
  const time = estimateTrainingTime({ tokens: o.tokens, parameters: memory.parameters, lora: o.lora !== undefined, gpu, gpus: n, ...(o.tokensPerS !== undefined ? { tokensPerS: o.tokensPerS } : {}), ...(o.prices ? { prices: o.prices } : {}) });
  const dur = formatDuration(time.seconds);
  const maxRt = o.limits?.max_runtime_s;
  checks.push(
    maxRt !== undefined && time.seconds > maxRt
      ? { name: "duration", status: "warn", reason: `≈ ${dur} at ${Math.round(time.tokensPerS).toLocaleString("en-US")} tokens/s on ${n} × ${gpu}; over max_runtime_s ${maxRt}: the run will be stopped early` }
      : { name: "duration", status: "pass", reason: `≈ ${dur} at ${Math.round(time.tokensPerS).toLocaleString("en-US")} tokens/s on ${n} × ${gpu}` },
  );
  const maxCost = o.limits?.max_cost_usd;
  const cost = `≈ $${time.costUsd.toFixed(2)}`;
  checks.push(
    maxCost !== undefined && time.costUsd > maxCost
      ? { name: "cost", status: "warn", reason: `${cost}; over max_cost_usd ${maxCost}: the run will be stopped early` }
      : { name: "cost", status: "pass", reason: `${cost} at $${gpuHourPrice(o.prices ?? DEFAULT_PRICES, gpu)}/GPU-hour` },
  );
  return { checks, memory, time };
}

function smallestFitting(bytes: number, workers: readonly PreflightWorker[], n: number): string | undefined {
  let best: PreflightGpu | undefined;
  for (const w of workers) {
    const nth = [...w.gpus].sort((x, y) => y.memory_gb - x.memory_gb)[n - 1];
    if (nth && nth.memory_gb * GIB >= bytes && (!best || nth.memory_gb < best.memory_gb)) best = nth;
  }
  return best?.name;
}

/** A duration for a message: "42 s", "17 min", "3.5 h". */
export function formatDuration(s: number): string {
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** What {@link preflightTrainSpec} needs besides the spec. */
export interface PreflightTrainSpecOptions {
  workers: readonly PreflightWorker[];
  /** `requirements.gpus` of the submission. @default 1 */
  gpus?: number;
  /** Tokens in the packed dataset (one epoch), when known (e.g. from a pack manifest or a token count). */
  datasetTokens?: number;
  tokensPerS?: number;
  prices?: PriceTable;
  limits?: { max_runtime_s?: number; max_cost_usd?: number };
}

/** The subset of a `train` spec the model-side preflight reads (a parsed `TrainSpec` fits). */
export interface PreflightTrainSpecInput {
  model: { config?: Record<string, unknown> | undefined; lora?: LoraShape | undefined; precision?: "fp32" | "bf16" | "fp16" };
  pack?: { seq_len?: number } | undefined;
  hyperparameters?: { max_steps?: number | undefined; epochs?: number; micro_batch_size?: number; grad_accum?: number; gradient_checkpointing?: boolean } | undefined;
}

/**
 * {@link preflightTrain} for a `train` spec: sizes from `model.config`, sequence length from
 * `pack.seq_len` (default 2048), tokens from `max_steps · micro_batch · grad_accum · gpus · seq_len`
 * or `epochs · datasetTokens`. Without `model.config` (weights only) the memory check is a `warn`
 * saying it cannot be estimated; without a token count the duration and cost checks are skipped.
 *
 * @example
 * preflightTrainSpec(TrainSpec.parse(body.spec), { workers, gpus: body.requirements?.gpus, prices }).checks
 */
export function preflightTrainSpec(spec: PreflightTrainSpecInput, o: PreflightTrainSpecOptions): { checks: PreflightCheck[]; memory: TrainingMemoryEstimate | null; time: TrainingTimeEstimate | null } {
  const config = spec.model.config;
  if (config === undefined) {
    return { checks: [{ name: "gpu_memory", status: "warn", reason: "no model.config: the GPU memory cannot be estimated from weights alone; add the model's config to check the fit" }], memory: null, time: null };
  }
  const hp = spec.hyperparameters ?? {};
  const seqLen = spec.pack?.seq_len ?? 2048;
  const gpus = o.gpus ?? 1;
  const micro = hp.micro_batch_size ?? 1;
  const tokens = hp.max_steps !== undefined ? hp.max_steps * micro * (hp.grad_accum ?? 1) * Math.max(1, gpus) * seqLen : o.datasetTokens !== undefined ? (hp.epochs ?? 1) * o.datasetTokens : undefined;
  const base: PreflightTrainOptions = {
    config,
    precision: spec.model.precision ?? "bf16",
    seqLen,
    microBatch: micro,
    gradientCheckpointing: hp.gradient_checkpointing ?? false,
    workers: o.workers,
    gpus,
    tokens: tokens ?? 0,
    ...(spec.model.lora ? { lora: spec.model.lora } : {}),
    ...(o.tokensPerS !== undefined ? { tokensPerS: o.tokensPerS } : {}),
    ...(o.prices ? { prices: o.prices } : {}),
    ...(o.limits ? { limits: o.limits } : {}),
  };
  const r = preflightTrain(base);
  if (tokens === undefined && r.checks.length > 1) {
    r.checks.splice(1, r.checks.length - 1, { name: "duration", status: "warn", reason: "the number of tokens is not known (no max_steps and no dataset token count): duration and cost not estimated" });
    r.time = null;
  }
  return r;
}

// ── the wire format of POST /v1/preflight ──────────────────────────────────────────────────

/** One check as the API answers it: `message` says why, with the figures; `details` names fields, lines, workers. */
export const PreflightCheckReport = z.object({
  name: z.string(),
  status: PreflightStatus,
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type PreflightCheckReport = z.infer<typeof PreflightCheckReport>;

/** A training-memory estimate on the wire: bytes per GPU (every data-parallel GPU holds a replica), or of the host for CPU training. */
export const PreflightMemory = z.object({
  /** `gpu`: bytes per GPU; `host`: bytes of the worker's memory (CPU training, `requirements.gpus` 0). */
  per: z.enum(["gpu", "host"]),
  gpus: z.number().int().nonnegative(),
  parameters: z.number().int(),
  trainable_parameters: z.number().int(),
  weights_bytes: z.number(),
  gradients_bytes: z.number(),
  optimizer_bytes: z.number(),
  activations_bytes: z.number(),
  overhead_bytes: z.number(),
  total_bytes: z.number(),
  total_gib: z.number(),
});
export type PreflightMemory = z.infer<typeof PreflightMemory>;

/** The figures behind the checks; `null` where a figure could not be estimated (and a check says why). */
export const PreflightEstimate = z.object({
  memory: PreflightMemory.nullable(),
  /** Tokens the run trains on. */
  tokens: z.number().nullable(),
  tokens_per_s: z.number().nullable(),
  time_s: z.number().nullable(),
  cost_usd: z.number().nullable(),
  /** Where the estimate assumes it runs: a GPU name, or `cpu`. */
  device: z.string().nullable(),
});
export type PreflightEstimate = z.infer<typeof PreflightEstimate>;

/**
 * `POST /v1/preflight` answer (and `preflight` on the answer to a `train` submission):
 * `status` is the worst check's, `ok` is `status !== "fail"`.
 */
export const PreflightReport = z.object({
  ok: z.boolean(),
  status: PreflightStatus,
  checks: z.array(PreflightCheckReport),
  estimate: PreflightEstimate,
});
export type PreflightReport = z.infer<typeof PreflightReport>;

/** The worst status of some checks: `fail` over `warn` over `pass` (`pass` for none). */
export function worstStatus(checks: readonly { status: PreflightStatus }[]): PreflightStatus {
  if (checks.some((c) => c.status === "fail")) return "fail";
  return checks.some((c) => c.status === "warn") ? "warn" : "pass";
}
