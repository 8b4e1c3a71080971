import type { DocStep, OrderedStep } from "./built-steps.js";

/** What a thread computed for one document of a segment. */
export interface DocOutcome {
  /** Per step index: undefined (not reached), or the verdict; "ordered" steps are left to the main thread. */
  verdicts: ({ drop?: string; text?: string } | null | undefined)[];
  /** Index of the first step the main thread must run itself (after a text-editing ordered step). */
  inlineFrom: number;
  /** Text after the last step run here; omitted when it is the input text (a worker then sends no copy back). */
  text?: string;
  /** MinHash signature of `text` when the thread ran every step and the segment ends with MinHash. */
  signature?: Uint32Array | null;
  /** Time spent on `signature`, nanoseconds. */
  signatureNs: number;
  /** Time per step, nanoseconds. */
  ns: number[];
  /** Extra counters per step (PII kinds). */
  counts: Record<string, number>[];
}

/**
 * Run the thread-safe part of a segment on one document: per-document steps in order (stopping at
 * the first drop), skipping over ordered steps that do not edit text (they are decided on the main
 * thread, in input order, on the text as it stands at that step: that text is recorded).
 */
export function processDoc(
  text: string,
  steps: (DocStep | OrderedStep)[],
  signature: ((text: string) => Uint32Array | null) | null,
): DocOutcome {
  const verdicts: DocOutcome["verdicts"] = new Array(steps.length);
  const ns: number[] = new Array(steps.length).fill(0);
  const counts: Record<string, number>[] = steps.map(() => ({}));
  let t = text;
  let i = 0;
  for (; i < steps.length; i++) {
    const s = steps[i]!;
    if (s.kind === "ordered") {
      if (s.editsText) break;
      verdicts[i] = { text: t };
      continue;
    }
    const t0 = process.hrtime.bigint();
    const v = s.apply(t, counts[i]!);
    ns[i] = Number(process.hrtime.bigint() - t0);
    if (!v.keep) {
      verdicts[i] = { drop: v.reason };
      return { verdicts, inlineFrom: steps.length, ns, counts, signatureNs: 0 };
    }
    if (v.text !== undefined) t = v.text;
    verdicts[i] = v.text !== undefined ? { text: t } : null;
  }
  const out: DocOutcome = { verdicts, inlineFrom: i, ns, counts, signatureNs: 0 };
  if (t !== text) out.text = t;
  if (i === steps.length && signature !== null) {
    const t0 = process.hrtime.bigint();
    out.signature = signature(t);
    out.signatureNs = Number(process.hrtime.bigint() - t0);
  }
  return out;
}
