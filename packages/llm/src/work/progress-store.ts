import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { toJsonl } from "./jsonl.js";

const PREFIX = "progress-";

/** Options of a {@link ProgressStore}. */
export interface ProgressStoreOptions {
  /** Least time between two checkpoints written by {@link ProgressStore.maybeFlush}. @default 2000 */
  intervalMs?: number;
  /** Complete checkpoints kept on disk. @default 2 */
  keep?: number;
}

/**
 * Durable progress of a job made of many independent items (samples, prompts, records): each
 * checkpoint is a sub-folder `progress-<seq>/` of the checkpoint directory holding every finished
 * item so far, with an empty `COMPLETE` file written last — the worker's checkpoint contract, so
 * the runtime uploads it and restores the newest complete one before a new attempt.
 *
 * @example
 * const store = new ProgressStore(ctx.checkpointDir);
 * const done = await store.load();           // items finished by earlier attempts
 * store.record(key, result); await store.maybeFlush();
 */
export class ProgressStore<T> {
  readonly dir: string | undefined;
  private readonly intervalMs: number;
  private readonly keep: number;
  private readonly items = new Map<string, T>();
  private seq = 0;
  private lastFlush = 0;
  private dirty = false;
  private flushing: Promise<void> | undefined;
  /** Items restored by {@link load}. */
  restored = 0;

  constructor(dir: string | undefined, options: ProgressStoreOptions = {}) {
    this.dir = dir;
    this.intervalMs = options.intervalMs ?? 2000;
    this.keep = options.keep ?? 2;
  }

  /** Reads the newest complete checkpoint (an incomplete one, cut off mid-write, is ignored). */
  async load(): Promise<Map<string, T>> {
    if (!this.dir) return this.items;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return this.items;
    }
    const seqs = names
      .filter((n) => n.startsWith(PREFIX))
      .map((n) => Number(n.slice(PREFIX.length)))
      .filter((n) => Number.isInteger(n))
      .sort((a, b) => b - a);
    this.seq = seqs[0] ?? 0;
    for (const s of seqs) {
      const sub = join(this.dir, `${PREFIX}${String(s).padStart(6, "0")}`);
      const ok = await stat(join(sub, "COMPLETE")).then(
        () => true,
        () => false,
      );
      if (!ok) continue;
      const text = await readFile(join(sub, "items.jsonl"), "utf8");
      for (const line of text.split("\n")) {
        if (line === "") continue;
        const { key, value } = JSON.parse(line) as { key: string; value: T };
        this.items.set(key, value);
      }
      break;
    }
    this.restored = this.items.size;
    return this.items;
  }

  /** Whether `key` is finished. */
  has(key: string): boolean {
    return this.items.has(key);
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  /** Finished items. */
  get size(): number {
    return this.items.size;
  }

  /** Every finished item. */
  entries(): IterableIterator<[string, T]> {
    return this.items.entries();
  }

  /** Marks an item finished (in memory until the next flush). */
  record(key: string, value: T): void {
    this.items.set(key, value);
    this.dirty = true;
  }

  /** Flushes if the interval has passed since the last checkpoint. */
  async maybeFlush(): Promise<void> {
    if (this.dirty && performance.now() - this.lastFlush >= this.intervalMs) await this.flush();
  }

  /** Writes a checkpoint now (no-op without changes or without a directory). */
  async flush(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (!this.dir || !this.dirty) return;
    this.flushing = this.write(this.dir);
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  private async write(dir: string): Promise<void> {
    this.dirty = false;
    this.lastFlush = performance.now();
    this.seq++;
    const sub = join(dir, `${PREFIX}${String(this.seq).padStart(6, "0")}`);
    await mkdir(sub, { recursive: true });
    const lines = [...this.items].map(([key, value]) => ({ key, value }));
    await writeFile(join(sub, "items.jsonl"), toJsonl(lines));
    await writeFile(join(sub, "state.json"), JSON.stringify({ items: lines.length, written_at: new Date().toISOString() }));
    // Written last: a checkpoint without it is incomplete and never restored.
    await writeFile(join(sub, "COMPLETE"), "");
    const old = this.seq - this.keep;
    for (let s = old; s > 0 && s > old - 3; s--) {
      await rm(join(dir, `${PREFIX}${String(s).padStart(6, "0")}`), { recursive: true, force: true });
    }
  }
}
