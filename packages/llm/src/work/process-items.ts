import { setMaxListeners } from "node:events";
import type { ProgressStore } from "./progress-store.js";

/** Options of {@link processItems}. */
export interface ProcessItemsOptions<R> {
  /** Items worked on at once. */
  concurrency: number;
  /** Stops taking new items; items in flight may finish within {@link graceMs}. */
  signal?: AbortSignal | undefined;
  /** How long in-flight items may run after {@link signal} aborts before they are aborted too. @default 10000 */
  graceMs?: number;
  /** Where finished items are recorded and checkpointed; finished keys are skipped. */
  store: ProgressStore<R>;
  /** Item failures: stop everything (default) or record the error and go on. */
  onError?: "fail" | "skip";
  /** Turns an error into the value recorded for a skipped item. */
  errorValue?: (err: unknown) => R;
  /** Called after each finished item. */
  onProgress?: (done: number, total: number) => void;
}

/** How {@link processItems} ended. */
export interface ProcessItemsResult {
  /** Everything is finished. */
  complete: boolean;
  /** Stopped by the signal. */
  aborted: boolean;
  /** The failure that stopped the run (`onError: "fail"`). */
  error?: unknown;
  /** Items finished in this run (not restored). */
  processed: number;
}

/**
 * Works through keyed items with bounded concurrency, recording each result in a
 * {@link ProgressStore} and checkpointing as it goes. On abort it takes no new item, lets the ones
 * in flight finish (their replies are paid for: losing them would mean asking again), then writes
 * a final checkpoint. A failure with `onError: "fail"` does the same and reports the error, so a
 * job never loses completed items because a later one failed.
 *
 * @example
 * const r = await processItems(rows.map((row, i) => ({ key: String(i), item: row })), async (row, signal) => score(row, signal), { concurrency: 8, store });
 */
export async function processItems<I, R>(
  items: readonly { key: string; item: I }[],
  fn: (item: I, signal: AbortSignal, key: string) => Promise<R>,
  options: ProcessItemsOptions<R>,
): Promise<ProcessItemsResult> {
  const { store } = options;
  const todo = items.filter((it) => !store.has(it.key));
  const hard = new AbortController();
  // Every request in flight listens on this signal; more than 10 at once is expected.
  setMaxListeners(0, hard.signal);
  let stop = false;
  let error: unknown;
  let aborted = false;
  let processed = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    stop = true;
    aborted = true;
    graceTimer = setTimeout(() => hard.abort(options.signal?.reason), options.graceMs ?? 10_000);
    graceTimer.unref();
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });

  let next = 0;
  const worker = async () => {
    while (!stop && next < todo.length) {
      const it = todo[next++]!;
      try {
        const r = await fn(it.item, hard.signal, it.key);
        store.record(it.key, r);
        processed++;
      } catch (e) {
        if (hard.signal.aborted) return;
        if (options.onError === "skip" && options.errorValue) {
          store.record(it.key, options.errorValue(e));
          processed++;
        } else {
          if (error === undefined) error = e;
          stop = true;
          return;
        }
      }
      options.onProgress?.(store.size, items.length);
      await store.maybeFlush();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, todo.length)) }, worker));
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (graceTimer) clearTimeout(graceTimer);
    await store.flush();
  }
  const complete = items.every((it) => store.has(it.key));
  return { complete, aborted, processed, ...(error !== undefined ? { error } : {}) };
}
