import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import { processDoc } from "./batch-processor.js";
import { buildSteps, segments } from "./built-steps.js";
import type { ResolvedStep } from "./pipeline-config.js";

// One thread of the audit pipeline: builds its own copy of the steps, then answers batches of
// texts with per-document outcomes, in the order received, on `port` (which the main thread polls).
const { steps, segment, port } = workerData as { steps: ResolvedStep[]; segment: number; port: MessagePort };
const ready = buildSteps(steps).then((built) => segments(built)[segment]!);

parentPort!.on("message", (msg: { id: number; texts: string[] }) => {
  void ready.then(
    (seg) => {
      const sig = seg.global ? (t: string) => seg.global!.hasher.signature(t) : null;
      const outcomes = msg.texts.map((t) => processDoc(t, seg.steps, sig));
      port.postMessage({ id: msg.id, outcomes });
    },
    (e: unknown) => port.postMessage({ id: msg.id, error: String((e as Error)?.message ?? e) }),
  );
});
