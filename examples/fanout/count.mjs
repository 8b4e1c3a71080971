// Counts documents, words and each word in $NEXA_INPUTS_DIR/shard.jsonl; writes counts.json.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const lines = readFileSync(join(process.env.NEXA_INPUTS_DIR, "shard.jsonl"), "utf8").split("\n").filter((l) => l.trim() !== "");
const words = {};
let total = 0;
for (const l of lines) {
  for (const w of JSON.parse(l).text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    words[w] = (words[w] ?? 0) + 1;
    total++;
  }
}
writeFileSync(join(process.env.NEXA_OUTPUTS_DIR, "counts.json"), JSON.stringify({ documents: lines.length, words: total, counts: words }));
console.log(`${lines.length} documents, ${total} words`);
