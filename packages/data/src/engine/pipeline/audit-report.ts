/** Statistics of one step. */
export interface StepReport {
  name: string;
  type: string;
  docs_in: number;
  docs_out: number;
  bytes_in: number;
  bytes_out: number;
  /** Documents whose text the step changed (C4 line edits, PII redaction, paragraph dedup). */
  edited: number;
  /** Drops per reason (datatrove's reason strings). */
  drops: Record<string, number>;
  /** Extra counters (PII findings per kind, MinHash clusters). */
  counts: Record<string, number>;
  /** CPU time spent in the step, summed over threads, milliseconds. */
  time_ms: number;
  /** `bytes_in` per second of `time_ms`, MB/s (10^6 bytes). */
  mb_per_s: number;
}

/** Histogram of document lengths (characters) in powers of two: bucket `k` holds lengths in [2^k, 2^(k+1)). */
export type LengthHistogram = Record<string, number>;

/** `report.json`. */
export interface AuditReport {
  input: string;
  steps: StepReport[];
  docs_in: number;
  bytes_in: number;
  kept: number;
  kept_bytes: number;
  removed: number;
  /** Records skipped for bad input (with `on_error: skip`), per error kind. */
  skipped: Record<string, number>;
  /** First few skipped-record messages (file, line, field). */
  skipped_examples: string[];
  length_histogram: { input: LengthHistogram; kept: LengthHistogram };
  wall_ms: number;
  mb_per_s: number;
  threads: number;
}

/** Adds one length to a histogram. */
export function addLength(h: LengthHistogram, chars: number): void {
  const k = chars <= 0 ? "0" : `${2 ** Math.floor(Math.log2(chars))}`;
  h[k] = (h[k] ?? 0) + 1;
}

/** A readable table of a report (one row per step). */
export function formatReport(r: AuditReport): string {
  const rows = [["step", "docs in", "docs out", "dropped", "edited", "MB in", "time s", "MB/s", "top reasons"]];
  for (const s of r.steps) {
    const top = Object.entries(s.drops)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    rows.push([s.name, `${s.docs_in}`, `${s.docs_out}`, `${s.docs_in - s.docs_out}`, `${s.edited}`, (s.bytes_in / 1e6).toFixed(2), (s.time_ms / 1000).toFixed(2), s.mb_per_s.toFixed(2), top]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const lines = rows.map((row) => row.map((cell, c) => (c === 0 || c === row.length - 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  const skipped = Object.values(r.skipped).reduce((a, b) => a + b, 0);
  lines.push(
    "",
    `${r.docs_in} docs (${(r.bytes_in / 1e6).toFixed(2)} MB) in, ${r.kept} kept, ${r.removed} removed${skipped ? `, ${skipped} bad records skipped` : ""}; ` +
      `${(r.wall_ms / 1000).toFixed(2)} s wall, ${r.mb_per_s.toFixed(2)} MB/s on ${r.threads} thread(s)`,
  );
  return lines.join("\n");
}
