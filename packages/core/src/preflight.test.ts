import { describe, expect, it } from "vitest";
import { TrainSpec } from "./job-specs/train-deploy.js";
import { checkGpuFit, estimateTrainingMemory, estimateTrainingTime, loraParameterCount, modelParameterCount, preflightTrain, preflightTrainSpec } from "./preflight.js";
import { PriceTable } from "./usage.js";

// Reference counts from transformers 5.18 / peft 0.21 (sum(p.numel() for p in model.parameters()),
// trainable ones for LoRA with target_modules="all-linear"), instantiated once from these configs.
const GPT2_SMALL = { model_type: "gpt2" };
const TINY_GPT2 = { model_type: "gpt2", n_layer: 2, n_embd: 64, n_head: 4, vocab_size: 8192, n_positions: 128 };
const LLAMA2_7B = { model_type: "llama", vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32 };
const QWEN2_05B = { model_type: "qwen2", vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, tie_word_embeddings: true };
const GIB = 2 ** 30;

describe("parameter counts match transformers", () => {
  it("GPT-2 small (tied embeddings), a tiny GPT-2, Llama-2 7B, Qwen2 0.5B (GQA, qkv biases, tied)", () => {
    expect(modelParameterCount(GPT2_SMALL)).toBe(124_439_808);
    expect(modelParameterCount(TINY_GPT2)).toBe(632_576);
    expect(modelParameterCount(LLAMA2_7B)).toBe(6_738_415_616);
    expect(modelParameterCount(QWEN2_05B)).toBe(494_032_768);
  });
  it("LoRA adapters on every linear layer", () => {
    expect(loraParameterCount(TINY_GPT2, { r: 4 })).toBe(8192);
    expect(loraParameterCount(LLAMA2_7B, { r: 8 })).toBe(19_988_480);
    // q and v only: 32 layers × 8 × (4096 + 4096) × 2
    expect(loraParameterCount(LLAMA2_7B, { r: 8, target_modules: ["q_proj", "v_proj"] })).toBe(4_194_304);
  });
});

describe("memory estimate", () => {
  it("GPT-2 small, bf16, full fine-tune, 8 × 1024 tokens (hand-computed)", () => {
    const m = estimateTrainingMemory({ config: GPT2_SMALL, precision: "bf16", seqLen: 1024, microBatch: 8 });
    const P = 124_439_808;
    expect(m.weights).toBe(6 * P); // bf16 weights + fp32 master: 746,638,848
    expect(m.gradients).toBe(2 * P);
    expect(m.optimizer).toBe(8 * P);
    // 12 layers × 34 · 8192 tokens · 768 + logits 2 · 4 B · 8192 · 50257
    expect(m.activations).toBe(12 * 34 * 8192 * 768 + 8 * 8192 * 50257); // 5,860,556,800
    expect(m.total).toBeCloseTo(9_710_494_924.8, 0);
  });
  it("gradient checkpointing keeps only the layer inputs plus one layer", () => {
    const m = estimateTrainingMemory({ config: GPT2_SMALL, precision: "bf16", seqLen: 1024, microBatch: 8, gradientCheckpointing: true });
    expect(m.activations).toBe(12 * 2 * 8192 * 768 + 34 * 8192 * 768 + 8 * 8192 * 50257);
    const eager = estimateTrainingMemory({ config: GPT2_SMALL, precision: "bf16", seqLen: 1024, microBatch: 8, flashAttention: false });
    expect(eager.activations - 5_860_556_800).toBe(12 * 5 * 12 * 1024 * 1024 * 8);
  });
  it("Llama-2 7B LoRA r=8, bf16, 2048 tokens, checkpointing: ≈ 16.5 GiB; full fine-tune ≈ 121 GiB", () => {
    const lora = estimateTrainingMemory({ config: LLAMA2_7B, precision: "bf16", lora: { r: 8 }, seqLen: 2048, gradientCheckpointing: true });
    expect(lora.trainableParameters).toBe(19_988_480);
    expect(lora.weights).toBe(13_556_785_152);
    expect(lora.total / GIB).toBeCloseTo(16.4724, 3);
    const full = estimateTrainingMemory({ config: LLAMA2_7B, precision: "bf16", seqLen: 2048 });
    expect(full.total / GIB).toBeCloseTo(121.338, 2);
  });
});

describe("fit check", () => {
  const fleet = [
    { name: "small", gpus: [{ name: "NVIDIA L4", memory_gb: 24 }] },
    { name: "big", gpus: [{ name: "NVIDIA H100 80GB HBM3", memory_gb: 80 }, { name: "NVIDIA H100 80GB HBM3", memory_gb: 80 }] },
  ];
  it("rejects a model that cannot fit and accepts one that can", () => {
    const full = estimateTrainingMemory({ config: LLAMA2_7B, precision: "bf16", seqLen: 2048 });
    const fail = checkGpuFit(full.total, fleet);
    expect(fail.status).toBe("fail");
    expect(fail.reason).toMatch(/121\.3 GiB per GPU; the largest GPU has 80 GiB/);
    const lora = estimateTrainingMemory({ config: LLAMA2_7B, precision: "bf16", lora: { r: 8 }, seqLen: 2048, gradientCheckpointing: true });
    const ok = checkGpuFit(lora.total, fleet);
    expect(ok).toEqual({ name: "gpu_memory", status: "pass", reason: "16.5 GiB per GPU fits NVIDIA H100 80GB HBM3 (80 GiB) on big (21% of its memory)" });
  });
  it("warns above 90%, fails without enough GPUs on one worker or without GPUs", () => {
    expect(checkGpuFit(22 * GIB, fleet.slice(0, 1)).status).toBe("warn");
    expect(checkGpuFit(10 * GIB, fleet, 4)).toMatchObject({ status: "fail", reason: "needs 4 GPUs on one worker; the most any worker has is 2" });
    expect(checkGpuFit(1 * GIB, [{ gpus: [] }]).status).toBe("fail");
  });
});

describe("duration and cost", () => {
  it("6·P FLOPs per token at 35% of peak; cost from the price table", () => {
    const t = estimateTrainingTime({ tokens: 1e9, parameters: 124_439_808, gpu: "NVIDIA H100 80GB HBM3" });
    // 989e12 · 0.35 / (6 · 124,439,808) = 463,611.0 tokens/s
    expect(t.tokensPerS).toBeCloseTo(463_611.0, 0);
    expect(t.seconds).toBeCloseTo(2156.98, 1);
    expect(t.costUsd).toBeCloseTo(1.4979, 3); // 2156.98 s at $2.5/h
    const measured = estimateTrainingTime({ tokens: 36_000, parameters: 1, gpu: "NVIDIA L4", gpus: 2, tokensPerS: 10, prices: PriceTable.parse({ gpu_hour: { L4: 1 } }) });
    expect(measured).toEqual({ tokensPerS: 10, seconds: 3600, costUsd: 2 });
  });
  it("preflightTrain: fit, duration and cost checks with limits", () => {
    const r = preflightTrain({
      config: GPT2_SMALL, precision: "bf16", seqLen: 1024, microBatch: 8, tokens: 1e9,
      workers: [{ name: "l4", gpus: [{ name: "NVIDIA L4", memory_gb: 24 }] }],
      limits: { max_runtime_s: 3600, max_cost_usd: 100 },
    });
    expect(r.checks.map((c) => [c.name, c.status])).toEqual([["gpu_memory", "pass"], ["duration", "warn"], ["cost", "pass"]]);
    // L4: 121e12 · 0.35 / 746,638,848 = 56,720 tokens/s → 17,630 s ≈ 4.9 h, $3.43 at $0.7/h
    expect(r.time?.seconds).toBeCloseTo(17_630.5, 0);
    expect(r.checks[1]?.reason).toMatch(/≈ 4\.9 h at 56,721 tokens\/s on 1 × NVIDIA L4; over max_runtime_s 3600/);
    expect(r.checks[2]?.reason).toBe("≈ $3.43 at $0.7/GPU-hour");
    const none = preflightTrain({ config: LLAMA2_7B, seqLen: 2048, tokens: 1e9, workers: [{ gpus: [{ name: "NVIDIA L4", memory_gb: 24 }] }] });
    expect(none.checks).toHaveLength(1);
    expect(none.checks[0]?.status).toBe("fail");
  });
});

describe("preflightTrainSpec", () => {
  const workers = [{ name: "l4", gpus: [{ name: "NVIDIA L4", memory_gb: 24 }] }];
  it("reads sizes, seq_len, batch and steps from a train spec", () => {
    const spec = TrainSpec.parse({ dataset: "art_x", model: { config: GPT2_SMALL, precision: "bf16" }, pack: { seq_len: 1024 }, hyperparameters: { max_steps: 1000, micro_batch_size: 8, grad_accum: 2 } });
    const r = preflightTrainSpec(spec, { workers });
    expect(r.memory?.total).toBeCloseTo(9_710_494_924.8, 0);
    // 1000 steps × 8 × 2 × 1 GPU × 1024 tokens = 16,384,000 tokens at 56,721 tokens/s ≈ 289 s
    expect(r.time?.seconds).toBeCloseTo(16_384_000 / (121e12 * 0.35 / (6 * 124_439_808)), 3);
    expect(r.checks.map((c) => c.status)).toEqual(["pass", "pass", "pass"]);
  });
  it("a model that cannot fit fails; weights only or no token count warn", () => {
    const big = TrainSpec.parse({ dataset: "art_x", model: { config: LLAMA2_7B }, pack: { seq_len: 2048 } });
    expect(preflightTrainSpec(big, { workers }).checks.map((c) => [c.name, c.status])).toEqual([["gpu_memory", "fail"]]);
    const weights = TrainSpec.parse({ dataset: "art_x", model: { weights: "art_base" } });
    expect(preflightTrainSpec(weights, { workers }).checks[0]?.status).toBe("warn");
    const small = TrainSpec.parse({ dataset: "art_x", model: { config: TINY_GPT2 }, pack: { seq_len: 128 } });
    expect(preflightTrainSpec(small, { workers }).checks.map((c) => [c.name, c.status])).toEqual([["gpu_memory", "pass"], ["duration", "warn"]]);
    expect(preflightTrainSpec(small, { workers, datasetTokens: 1e6 }).time?.seconds).toBeGreaterThan(0);
  });
});
