import { z } from "zod";

/** Names of the step types a pipeline can use. */
export const StepType = z.enum([
  "gopher_quality",
  "gopher_repetition",
  "c4",
  "fineweb",
  "length",
  "regex",
  "pii",
  "decontaminate",
  "exact_dedup",
  "bloom_dedup",
  "minhash",
]);
export type StepType = z.infer<typeof StepType>;

/** A step: its type name alone, or `{type, name?, options?}`. */
export const StepSpec = z.union([
  StepType,
  z.strictObject({
    type: StepType,
    /** Name in reports and in `removed.jsonl`'s `filter`. @default the type */
    name: z.string().min(1).optional(),
    /** The step's options (see each step's schema). */
    options: z.record(z.string(), z.unknown()).optional(),
  }),
]);
export type StepSpec = z.infer<typeof StepSpec>;

/** Named pipelines. `fineweb` is FineWeb's filter order (`examples/fineweb.py`) and MinHash; `datatrove` is the same steps with each filter's datatrove defaults. */
export const Preset = z.enum(["fineweb", "datatrove"]);
export type Preset = z.infer<typeof Preset>;

/** A pipeline as written in YAML/JSON or assembled from flags. */
export const PipelineConfig = z.strictObject({
  /** Steps in order; omitted means the preset's. */
  steps: z.array(StepSpec).min(1).optional(),
  /** @default "fineweb" */
  preset: Preset.default("fineweb"),
  /** Per-step options keyed by step name (merged over the preset's). */
  options: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  /** @default "text" */
  text_field: z.string().min(1).default("text"),
  /** @default "id" */
  id_field: z.string().min(1).default("id"),
  /** @default "fail" */
  on_error: z.enum(["fail", "skip"]).default("fail"),
  /** Threads for the per-document steps: the calling thread and `threads - 1` worker threads. @default 1 */
  threads: z.number().int().min(1).max(256).default(1),
});
export type PipelineConfig = z.input<typeof PipelineConfig>;
export type ResolvedPipelineConfig = z.output<typeof PipelineConfig>;

/** A step after presets and options are applied. */
export interface ResolvedStep {
  type: StepType;
  name: string;
  options: Record<string, unknown>;
}

const PRESET_STEPS: Record<Preset, ResolvedStep[]> = {
  fineweb: [
    { type: "gopher_repetition", name: "gopher_repetition", options: {} },
    { type: "gopher_quality", name: "gopher_quality", options: {} },
    { type: "c4", name: "c4", options: { filter_no_terminal_punct: false } },
    { type: "fineweb", name: "fineweb", options: {} },
    { type: "minhash", name: "minhash", options: {} },
  ],
  datatrove: [
    { type: "gopher_repetition", name: "gopher_repetition", options: {} },
    { type: "gopher_quality", name: "gopher_quality", options: {} },
    { type: "c4", name: "c4", options: {} },
    { type: "fineweb", name: "fineweb", options: {} },
    { type: "minhash", name: "minhash", options: {} },
  ],
};

/** Apply the preset and per-step options: the ordered list of steps that will run. */
export function resolveSteps(config: ResolvedPipelineConfig): ResolvedStep[] {
  const preset = PRESET_STEPS[config.preset];
  const presetOptions = new Map(preset.map((s) => [s.type, s.options]));
  const specs: ResolvedStep[] = (config.steps ?? preset).map((s) =>
    typeof s === "string"
      ? { type: s, name: s, options: { ...(presetOptions.get(s) ?? {}) } }
      : { type: s.type, name: s.name ?? s.type, options: { ...(presetOptions.get(s.type) ?? {}), ...(s.options ?? {}) } },
  );
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new Error(`pipeline: step name "${s.name}" appears twice; give the second one a distinct "name"`);
    names.add(s.name);
    Object.assign(s.options, config.options[s.name] ?? {});
  }
  return specs;
}

/** Parse a comma-separated `--steps` list, naming the bad entry. */
export function parseStepList(list: string): StepType[] {
  return list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const r = StepType.safeParse(s);
      if (!r.success) throw new Error(`--steps: unknown step "${s}"; choose from ${StepType.options.join(", ")}`);
      return r.data;
    });
}
