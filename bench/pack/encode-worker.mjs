// Worker of bench-pack.mjs: loads a tokenizer, receives its share of the texts, encodes them on "go".
import { parentPort, workerData } from "node:worker_threads";
import { loadTokenizer } from "../../packages/data/dist/tokenize/index.js";

const tok = await loadTokenizer(workerData.spec);
tok.encode("warm up 123 !!");
const texts = workerData.texts;
if (workerData.warm) for (const t of texts) tok.encode(t);
parentPort.postMessage({ ready: true });
parentPort.on("message", () => {
  let tokens = 0;
  const t0 = performance.now();
  for (const t of texts) tokens += tok.encode(t).length;
  parentPort.postMessage({ tokens, seconds: (performance.now() - t0) / 1000 });
});
