import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type DocOutcome, processDoc } from "./batch-processor.js";
import type { DocStep, OrderedStep, GlobalStep } from "./built-steps.js";
import type { ResolvedStep } from "./pipeline-config.js";

/** Runs batches of documents through a segment's thread-safe steps; results come back in submission order. */
export interface DocExecutor {
  submit(texts: string[]): Promise<DocOutcome[]>;
  close(): Promise<void>;
}

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
 * A pool of `worker_threads`, batches dealt round-robin. Each worker builds its own steps from
 * the resolved configuration. Output order is the submission order, whatever finishes first.
 */
export function poolExecutor(threads: number, steps: ResolvedStep[], segment: number, script: URL): DocExecutor {
  const workers = Array.from({ length: threads }, () => new Worker(script, { workerData: { steps, segment } }));
  const pending = new Map<number, { resolve: (o: DocOutcome[]) => void; reject: (e: Error) => void }>();
  let failed: Error | undefined;
  for (const w of workers) {
    w.on("message", (m: { id: number; outcomes?: DocOutcome[]; error?: string }) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`audit worker: ${m.error}`));
      else p.resolve(m.outcomes!);
    });
    w.on("error", (e) => {
      failed = e;
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
  }
  let next = 0;
  return {
    submit(texts) {
      if (failed) return Promise.reject(failed);
      const id = next++;
      return new Promise<DocOutcome[]>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        workers[id % workers.length]!.postMessage({ id, texts });
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
