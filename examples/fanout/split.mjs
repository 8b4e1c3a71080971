// Splits $NEXA_INPUTS_DIR/corpus.jsonl into $SHARDS round-robin shards, shard-<i>.jsonl, in
// $NEXA_OUTPUTS_DIR. Every shard is written, even an empty one, so the fan-out is always SHARDS wide.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const shards = Number(process.env.SHARDS);
if (!Number.isInteger(shards) || shards < 1) {
  console.error(`SHARDS must be a whole number ≥ 1, got ${JSON.stringify(process.env.SHARDS)}`);
  process.exit(2);
}
const lines = readFileSync(join(process.env.NEXA_INPUTS_DIR, "corpus.jsonl"), "utf8").split("\n").filter((l) => l.trim() !== "");
const parts = Array.from({ length: shards }, () => []);
lines.forEach((l, i) => parts[i % shards].push(l));
const width = String(shards - 1).length;
parts.forEach((p, i) => writeFileSync(join(process.env.NEXA_OUTPUTS_DIR, `shard-${String(i).padStart(width, "0")}.jsonl`), p.map((l) => l + "\n").join("")));
console.log(`${lines.length} documents into ${shards} shards`);
