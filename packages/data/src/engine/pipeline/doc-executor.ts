import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { type DocOutcome, processDoc } from "./batch-processor.js";
import type { DocStep, OrderedStep, GlobalStep } from "./built-steps.js";
import type { ResolvedStep } from "./pipeline-config.js";

/** Runs batches of documents through a segment's thread-safe steps; results come back in submission order. */
export interface DocExecutor {
  submit(texts: string[]): Promise<DocOutcome[]>;
  close(): Promise<void>;
}

/** Batches a worker may have queued before the calling thread runs the next one itself: enough that a worker does not run dry while the calling thread computes a batch of its own. */
export const WORKER_QUEUE = 4;

/** Same-thread executor. */
export function inlineExecutor(steps: (DocStep | OrderedStep)[], global: GlobalStep | null): DocExecutor {
  const sig = global ? (t: string) => global.hasher.signature(t) : null;
  return {
    submit: (texts) => Promise.resolve(texts.map((t) => processDoc(t, steps, sig))),
    close: () => Promise.resolve(),
  };
}

/** The compiled worker script, also when this module runs from TypeScript sources (tests). */
export function workerScript(): URL | null {
  const here = new URL("./pipeline-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const dist = new URL(here.href.replace("/src/engine/pipeline/", "/dist/engine/pipeline/"));
  return existsSync(fileURLToPath(dist)) ? dist : null;
}

/**
 * `threads` computing threads: `threads - 1` `worker_threads` and the calling thread. A batch goes
 * to the worker with the fewest batches queued while that is under {@link WORKER_QUEUE}; when every worker is that
 * busy the batch runs here, on `local`, at once — the calling thread would otherwise only wait, and
 * `threads` threads then keep `threads` cores busy, not `threads + 1`. Each worker builds its own
 * steps from the resolved configuration. Output order is the submission order, whatever finishes first.
 */
export function poolExecutor(threads: number, steps: ResolvedStep[], segment: number, script: URL, local: DocExecutor): DocExecutor {
  // Each worker answers on its own port, which the calling thread also polls synchronously before
  // placing a batch: while it computes a batch of its own, answers queue up unseen, and without the
  // poll every batch read from the same input chunk would go to `local` while the worker runs dry.
  const ports: MessagePort[] = [];
  const workers = Array.from({ length: Math.max(1, threads - 1) }, () => {
    const { port1, port2 } = new MessageChannel();
    ports.push(port1);
    return new Worker(script, { workerData: { steps, segment, port: port2 }, transferList: [port2] });
  });
  const queued = new Array<number>(workers.length).fill(0);
  const pending = new Map<number, { worker: number; resolve: (o: DocOutcome[]) => void; reject: (e: Error) => void }>();
  let failed: Error | undefined;
  const onAnswer = (m: { id: number; outcomes?: DocOutcome[]; error?: string }): void => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    queued[p.worker]!--;
    if (m.error !== undefined) p.reject(new Error(`audit worker: ${m.error}`));
    else p.resolve(m.outcomes!);
  };
  workers.forEach((w, i) => {
    ports[i]!.on("message", onAnswer);
    w.on("error", (e) => {
      failed = e;
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
  });
  let next = 0;
  return {
    submit(texts) {
      if (failed) return Promise.reject(failed);
      for (const port of ports) {
        for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) onAnswer(m.message as Parameters<typeof onAnswer>[0]);
      }
      let worker = 0;
      for (let i = 1; i < workers.length; i++) if (queued[i]! < queued[worker]!) worker = i;
      if (queued[worker]! >= WORKER_QUEUE) return local.submit(texts);
      const id = next++;
      queued[worker]!++;
      return new Promise<DocOutcome[]>((resolve, reject) => {
        pending.set(id, { worker, resolve, reject });
        workers[worker]!.postMessage({ id, texts });
      });
    },
    async close() {
      for (const port of ports) port.close();
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
