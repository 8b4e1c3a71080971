import Table from "cli-table3";
import pc from "picocolors";

/** Prints a value as pretty JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** Prints rows as a table with the given columns. */
export function printTable(head: string[], rows: (string | number | null | undefined)[][]): void {
  if (rows.length === 0) {
    process.stdout.write(pc.dim("(none)") + "\n");
    return;
  }
  const t = new Table({ head: head.map((h) => pc.bold(h)), style: { head: [], border: [] }, chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" } });
  for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? "" : String(c))));
  process.stdout.write(t.toString() + "\n");
}

/** Key/value pairs, aligned. */
export function printFields(fields: [string, unknown][]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) {
    if (v === undefined || v === null || v === "") continue;
    const text = typeof v === "object" ? JSON.stringify(v) : String(v);
    process.stdout.write(`${pc.dim(k.padEnd(width))}  ${text}\n`);
  }
}

/** Colours a job status. */
export function status(s: string): string {
  switch (s) {
    case "succeeded":
      return pc.green(s);
    case "failed":
      return pc.red(s);
    case "running":
      return pc.cyan(s);
    case "canceled":
      return pc.yellow(s);
    default:
      return s;
  }
}

/** "3.2s", "4m12s", "2h05m". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
}

/** Seconds between two ISO timestamps (to now when the end is missing). */
export function elapsed(start: string | null, end: string | null): number | null {
  if (start === null) return null;
  return ((end === null ? Date.now() : Date.parse(end)) - Date.parse(start)) / 1000;
}

/** Relative age: "12s ago". */
export function ago(ts: string | null): string {
  if (ts === null) return "";
  return `${duration((Date.now() - Date.parse(ts)) / 1000)} ago`;
}
