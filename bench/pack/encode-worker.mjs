// Worker of bench-pack.mjs: loads a tokenizer, receives its share of the texts, encodes them on "go".
// Before "ready" it encodes its share once, so the timed pass runs JIT-compiled code, as every pass after
// the first second of a real job does (the 1-thread side gets the same from its earlier passes). With
// --cache cold the timed pass then uses a freshly loaded tokenizer, whose merge cache is empty.
import { parentPort, workerData } from "node:worker_threads";
import { loadTokenizer } from "../../packages/data/dist/tokenize/index.js";

const texts = workerData.texts;
let tok = await loadTokenizer(workerData.spec);
for (const t of texts) tok.encode(t);
if (!workerData.warm) tok = await loadTokenizer(workerData.spec);
tok.encode("warm up 123 !!");
parentPort.postMessage({ ready: true });
parentPort.on("message", () => {
  let tokens = 0;
  const t0 = performance.now();
  for (const t of texts) tokens += tok.encode(t).length;
  parentPort.postMessage({ tokens, seconds: (performance.now() - t0) / 1000 });
});
