// Reads $NEXA_INPUTS_DIR/corpus.jsonl and writes word statistics to $NEXA_OUTPUTS_DIR/stats.json.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const lines = readFileSync(join(process.env.NEXA_INPUTS_DIR ?? ".", "corpus.jsonl"), "utf8").split("\n").filter(Boolean);
const counts = new Map();
let words = 0;
for (const line of lines) {
  for (const w of JSON.parse(line).text.toLowerCase().match(/[a-z]+/g) ?? []) {
    counts.set(w, (counts.get(w) ?? 0) + 1);
    words++;
  }
}
const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 10);
writeFileSync(join(process.env.NEXA_OUTPUTS_DIR ?? ".", "stats.json"), JSON.stringify({ documents: lines.length, words, vocabulary: counts.size, top }, null, 2));
console.log(`${lines.length} documents, ${words} words, ${counts.size} distinct`);
