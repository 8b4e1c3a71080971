// Merges every shard's counts ($NEXA_INPUTS_DIR/counts/<index>) into totals.json: documents,
// words, distinct words and the ten most frequent.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = join(process.env.NEXA_INPUTS_DIR, "counts");
const parts = readdirSync(dir).sort().map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")));
const counts = {};
for (const p of parts) for (const [w, n] of Object.entries(p.counts)) counts[w] = (counts[w] ?? 0) + n;
const top = Object.entries(counts)
  .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  .slice(0, 10);
const totals = {
  shards: parts.length,
  documents: parts.reduce((s, p) => s + p.documents, 0),
  words: parts.reduce((s, p) => s + p.words, 0),
  distinct: Object.keys(counts).length,
  top,
};
writeFileSync(join(process.env.NEXA_OUTPUTS_DIR, "totals.json"), JSON.stringify(totals, null, 2) + "\n");
console.log(JSON.stringify(totals));
