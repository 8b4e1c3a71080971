// Writes $NEXA_OUTPUTS_DIR/comparison.md: one row per evaluated model, one column per metric.
// Reads the evaluate step's reports, fanned in as $NEXA_INPUTS_DIR/reports/<index> (matrix order);
// argv[1] is --models=<JSON list of model names>, in the same order.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = join(process.env.NEXA_INPUTS_DIR, "reports");
const models = JSON.parse((process.argv[1] ?? "--models=[]").replace(/^--models=/, ""));
const reports = readdirSync(dir)
  .sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")));
const metrics = [...new Set(reports.flatMap((r) => Object.keys(r.metrics ?? {})))];
const rows = reports.map((r, i) => {
  const cells = metrics.map((m) => (r.metrics?.[m] === undefined ? "" : r.metrics[m].toFixed(4)));
  const judge = r.judge?.mean_score == null ? "" : r.judge.mean_score.toFixed(2);
  return `| ${models[i] ?? r.endpoint?.model ?? i} | ${cells.join(" | ")} | ${judge} |`;
});
const table = [`| model | ${metrics.join(" | ")} | judge |`, `|---|${metrics.map(() => "---").join("|")}|---|`, ...rows].join("\n");
writeFileSync(join(process.env.NEXA_OUTPUTS_DIR, "comparison.md"), table + "\n");
console.log(table);
