import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { BatchFailure, LineBatch, TokenizedBatch } from "./record-batch.js";
import { TokenizeError } from "./tokenize-error.js";
import type { TokenizeWorkerData } from "./tokenize-worker.js";

/**
 * The compiled worker script. Next to this module in `dist/`; when this module runs from TypeScript sources
 * (tests), the built copy in `dist/` is used, so `tsc -b packages/data` must have run.
 */
export function tokenizeWorkerPath(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  const candidates = here.endsWith(".ts")
    ? [here.replace(/[\\/]src[\\/]tokenize[\\/][^\\/]+\.ts$/, "/dist/tokenize/tokenize-worker.js")]
    : [fileURLToPath(new URL("./tokenize-worker.js", import.meta.url))];
  return candidates.find((p) => existsSync(p));
}

/**
 * Formats and tokenizes line batches on `worker_threads`. Results are delivered in submission order, so the
 * output does not depend on the number of threads.
 */
export class TokenizePool {
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  readonly #queue: LineBatch[] = [];
  readonly #done = new Map<number, TokenizedBatch>();
  readonly #waiters: (() => void)[] = [];
  #failure: TokenizeError | undefined;
  #inFlight = 0;

  constructor(threads: number, data: TokenizeWorkerData) {
    const script = tokenizeWorkerPath();
    if (!script) {
      throw new TokenizeError("output_failed", "the tokenize worker script is not built. Fix: run `npx tsc -b packages/data`, or use --threads 1");
    }
    for (let i = 0; i < threads; i++) {
      const w = new Worker(script, { workerData: data });
      w.on("message", (msg: { ok?: TokenizedBatch; fail?: BatchFailure }) => {
        this.#inFlight--;
        if (msg.ok) this.#done.set(msg.ok.seq, msg.ok);
        else if (msg.fail) this.#failure ??= new TokenizeError(msg.fail.error.code, msg.fail.error.message);
        this.#idle.push(w);
        this.pump();
        this.wake();
      });
      w.on("error", (err) => {
        this.#failure ??= new TokenizeError("output_failed", `tokenize worker failed: ${err.message}`, { cause: err });
        this.wake();
      });
      this.#workers.push(w);
      this.#idle.push(w);
    }
  }

  /** Batches submitted but not yet taken. */
  get pending(): number {
    return this.#queue.length + this.#inFlight + this.#done.size;
  }

  submit(batch: LineBatch): void {
    this.#queue.push(batch);
    this.pump();
  }

  /** Resolves to batch `seq` once it is done; rejects with the first failure of any batch. */
  async take(seq: number): Promise<TokenizedBatch> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      const got = this.#done.get(seq);
      if (got) {
        this.#done.delete(seq);
        return got;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const w = this.#idle.pop()!;
      this.#inFlight++;
      w.postMessage(this.#queue.shift()!);
    }
  }

  private wake(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}
