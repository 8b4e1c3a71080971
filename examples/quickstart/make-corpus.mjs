// Writes a small synthetic corpus to $NEXA_OUTPUTS_DIR/corpus.jsonl, with a few exact and
// near duplicates and one document carrying PII, and reports progress as metrics.
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const out = join(process.env.NEXA_OUTPUTS_DIR ?? ".", "corpus.jsonl");
const metrics = process.env.NEXA_METRICS_FILE;
const topics = ["queues", "leases", "checkpoints", "artifacts", "tokenizers", "gateways", "evaluation", "preemption"];
const verbs = ["explains", "describes", "documents", "examines", "summarises"];
// mulberry32: a small seeded PRNG with integer arithmetic (exact in JavaScript numbers).
let seed = Number(process.env.SEED ?? 7) >>> 0;
const rand = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const words = ("the a an worker job lease queue retry budget model token data set fleet machine spot GPU step loss shard " +
  "checkpoint artifact digest blob manifest handler claim heartbeat preempt resume cache matrix pipeline tokenizer " +
  "batch epoch gradient optimizer schedule warmup cosine decay evaluation judge rubric endpoint gateway latency").split(" ");
const docs = [];
for (let i = 0; i < 200; i++) {
  const topic = topics[i % topics.length];
  const sentences = [];
  for (let s = 0; s < 6 + Math.floor(rand() * 6); s++) {
    const n = 8 + Math.floor(rand() * 10);
    sentences.push(Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(" ") + ".");
  }
  docs.push({ id: `doc-${i}`, text: `This note ${verbs[i % verbs.length]} ${topic}. ${sentences.join(" ")}` });
}
docs.push({ id: "dup-exact", text: docs[3].text });
docs.push({ id: "dup-near", text: docs[5].text.replace(/\.$/, " again.") });
docs.push({ id: "pii", text: "Contact the on-call engineer at ops@example.com or +1 415-555-0132 when a spot worker is preempted twice in an hour; the lease sweeper re-queues its jobs." });
writeFileSync(out, "");
docs.forEach((d, i) => {
  appendFileSync(out, JSON.stringify(d) + "\n");
  if (metrics && i % 50 === 0) appendFileSync(metrics, JSON.stringify({ step: i, documents: i + 1 }) + "\n");
});
console.log(`wrote ${docs.length} documents to corpus.jsonl`);
