import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { BloomFilter } from "../dedup/bloom-filter.js";
import { Decontaminator } from "../dedup/decontaminator.js";
import { MinHasher } from "../dedup/minhash-deduper.js";
import { C4QualityFilter } from "../filters/c4-quality-filter.js";
import { type DocFilter, drop, type FilterVerdict, KEEP, WordSplitter } from "../filters/doc-filter.js";
import { FineWebQualityFilter } from "../filters/fineweb-quality-filter.js";
import { GopherQualityFilter } from "../filters/gopher-quality-filter.js";
import { GopherRepetitionFilter } from "../filters/gopher-repetition-filter.js";
import { LengthFilter, RegexFilter } from "../filters/simple-filters.js";
import { PiiScanner } from "../pii/pii-scanner.js";
import { pyStrip } from "../text/py-str.js";
import type { ResolvedStep } from "./pipeline-config.js";

/** A per-document step: any thread may run it. `counts` collects extra per-step counters (PII kinds). */
export interface DocStep {
  kind: "doc";
  name: string;
  apply(text: string, counts: Record<string, number>): FilterVerdict;
}

/** An order-dependent step (first occurrence wins), run on the main thread in input order. */
export interface OrderedStep {
  kind: "ordered";
  name: string;
  /** Whether the step edits text (paragraph dedup): later steps then run on the main thread. */
  editsText: boolean;
  apply(text: string, record: Record<string, unknown>): FilterVerdict;
}

/** A step that needs every document first (MinHash): splits the pipeline into passes. */
export interface GlobalStep {
  kind: "global";
  name: string;
  hasher: MinHasher;
}

export type BuiltStep = DocStep | OrderedStep | GlobalStep;

const ExactOptions = z.strictObject({
  /** `light`: lowercase, whitespace collapsed; `none`: bytes as they are. @default "light" */
  normalize: z.enum(["light", "none"]).default("light"),
});

const BloomOptions = z.strictObject({
  /** Record field to dedup on (e.g. `url`); omitted means the text. */
  field: z.string().optional(),
  /** `document` drops repeats; `paragraph` removes paragraphs (lines) seen before. @default "document" */
  mode: z.enum(["document", "paragraph"]).default("document"),
  /** @default 10000000 */
  expected_items: z.number().int().positive().default(10_000_000),
  /** @default 0.0001 */
  false_positive_rate: z.number().positive().lt(1).default(1e-4),
  /** Paragraphs shorter than this many characters are never removed. @default 0 */
  min_paragraph_chars: z.number().int().min(0).default(0),
});

const DecontamOptions = z.strictObject({
  /** JSONL files of evaluation records. */
  eval_files: z.array(z.string().min(1)).min(1),
  /** Fields of each eval record to index. @default ["text"] */
  fields: z.array(z.string().min(1)).default(["text"]),
  /** n-gram length in words. @default 13 */
  n: z.number().int().min(1).default(13),
});

function parse<T extends z.ZodType>(schema: T, step: ResolvedStep): z.output<T> {
  const r = schema.safeParse(step.options);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`pipeline step "${step.name}": option ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return r.data;
}

function wrap(name: string, f: DocFilter): DocStep {
  return { kind: "doc", name, apply: (t) => f.apply(t) };
}

function guarded<T>(step: ResolvedStep, build: () => T): T {
  try {
    return build();
  } catch (e) {
    if (e instanceof z.ZodError) {
      const issue = e.issues[0]!;
      throw new Error(`pipeline step "${step.name}": option ${issue.path.join(".") || "(root)"}: ${issue.message}`, { cause: e });
    }
    throw e;
  }
}

/** Build the runtime steps of a resolved pipeline (each thread builds its own). */
export async function buildSteps(steps: ResolvedStep[]): Promise<BuiltStep[]> {
  const splitter = new WordSplitter();
  const out: BuiltStep[] = [];
  for (const s of steps) {
    const o = s.options;
    switch (s.type) {
      case "gopher_quality":
        out.push(wrap(s.name, guarded(s, () => new GopherQualityFilter(o, splitter))));
        break;
      case "gopher_repetition":
        out.push(wrap(s.name, guarded(s, () => new GopherRepetitionFilter(o, splitter))));
        break;
      case "c4":
        out.push(wrap(s.name, guarded(s, () => new C4QualityFilter(o, splitter, s.name))));
        break;
      case "fineweb":
        out.push(wrap(s.name, guarded(s, () => new FineWebQualityFilter(o, splitter))));
        break;
      case "length":
        out.push(wrap(s.name, guarded(s, () => new LengthFilter(o))));
        break;
      case "regex":
        out.push(wrap(s.name, guarded(s, () => new RegexFilter(o as never))));
        break;
      case "pii": {
        const scanner = guarded(s, () => new PiiScanner(o));
        const action = scanner.options.action;
        out.push({
          kind: "doc",
          name: s.name,
          apply(text, counts) {
            const r = scanner.redact(text);
            const kinds = Object.keys(r.counts);
            for (const k of kinds) counts[k] = (counts[k] ?? 0) + r.counts[k as keyof typeof r.counts]!;
            if (kinds.length === 0) return KEEP;
            if (action === "drop") return drop(`pii:${kinds.sort().join("+")}`);
            if (action === "redact") return { keep: true, text: r.text };
            return KEEP;
          },
        });
        break;
      }
      case "decontaminate": {
        const opt = parse(DecontamOptions, s);
        const d = new Decontaminator(opt.n);
        for (const f of opt.eval_files) {
          const lines = readFileSync(f, "utf8").split("\n");
          lines.forEach((line, i) => {
            if (line.trim() === "") return;
            let rec: Record<string, unknown>;
            try {
              rec = JSON.parse(line) as Record<string, unknown>;
            } catch {
              throw new Error(`${f}, line ${i + 1}: eval record is not JSON; fix the line (decontaminate.eval_files)`);
            }
            for (const field of opt.fields) if (typeof rec[field] === "string") d.addEvalText(rec[field]);
          });
        }
        out.push({ kind: "doc", name: s.name, apply: (t) => (d.findOverlap(t) === undefined ? KEEP : drop(`eval_overlap_${opt.n}_gram`)) });
        break;
      }
      case "exact_dedup": {
        const opt = parse(ExactOptions, s);
        const seen = new Set<string>();
        out.push({
          kind: "ordered",
          name: s.name,
          editsText: false,
          apply(text) {
            const norm = opt.normalize === "light" ? pyStrip(text).toLowerCase().replace(/\s+/gu, " ") : text;
            const key = createHash("sha1").update(norm, "utf8").digest("base64");
            if (seen.has(key)) return drop("exact_duplicate");
            seen.add(key);
            return KEEP;
          },
        });
        break;
      }
      case "bloom_dedup": {
        const opt = parse(BloomOptions, s);
        const bloom = new BloomFilter(opt.expected_items, opt.false_positive_rate);
        out.push({
          kind: "ordered",
          name: s.name,
          editsText: opt.mode === "paragraph",
          apply(text, record) {
            if (opt.mode === "document") {
              const v = opt.field === undefined ? text : record[opt.field];
              if (typeof v !== "string") return KEEP;
              return bloom.add(v) ? drop(opt.field === undefined ? "bloom_duplicate" : `bloom_duplicate_${opt.field}`) : KEEP;
            }
            const lines = text.split("\n");
            const kept = lines.filter((l) => pyStrip(l) === "" || l.length < opt.min_paragraph_chars || !bloom.add(l));
            if (kept.every((l) => pyStrip(l) === "")) return drop("bloom_all_paragraphs_duplicate");
            return kept.length === lines.length ? KEEP : { keep: true, text: kept.join("\n") };
          },
        });
        break;
      }
      case "minhash": {
        const hasher = await guarded(s, () => MinHasher.create(o));
        out.push({ kind: "global", name: s.name, hasher });
        break;
      }
    }
  }
  return out;
}

/** Split built steps into segments ending at each global step. */
export function segments(steps: BuiltStep[]): { steps: (DocStep | OrderedStep)[]; global: GlobalStep | null }[] {
  const segs: { steps: (DocStep | OrderedStep)[]; global: GlobalStep | null }[] = [];
  let cur: (DocStep | OrderedStep)[] = [];
  for (const s of steps) {
    if (s.kind === "global") {
      segs.push({ steps: cur, global: s });
      cur = [];
    } else cur.push(s);
  }
  segs.push({ steps: cur, global: null });
  return segs;
}
