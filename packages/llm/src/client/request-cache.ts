import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { requestHash } from "./request-hash.js";

/** One cached exchange. */
export interface CacheEntry {
  key: string;
  path: string;
  request: unknown;
  response: unknown;
  created_at: string;
}

/**
 * An on-disk request cache: one JSON file per request, named by the hash of
 * `{endpoint, path, body, salt}`. Writes are atomic (temporary file, then rename), so a killed
 * process leaves either the whole entry or none; a resumed job finds every reply it was given.
 *
 * @example
 * const cache = new RequestCache("/work/job/request-cache");
 * const client = new OpenAIClient({ baseUrl, model, cache });
 */
export class RequestCache {
  readonly dir: string;
  private made = false;
  /** Hits and misses since construction. */
  readonly stats = { hits: 0, misses: 0, writes: 0 };

  constructor(dir: string) {
    this.dir = dir;
  }

  /** The key of a request: the endpoint and path are part of it, the API key never is. */
  static key(endpoint: string, path: string, body: unknown, salt?: string): string {
    return requestHash({ endpoint, path, body, salt: salt ?? null });
  }

  private file(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  /** The cached response of `key`, or undefined. A corrupt entry counts as a miss. */
  async get(key: string): Promise<unknown> {
    try {
      const text = await readFile(this.file(key), "utf8");
      const entry = JSON.parse(text) as CacheEntry;
      if (entry.key !== key) throw new Error("key mismatch");
      this.stats.hits++;
      return entry.response;
    } catch {
      this.stats.misses++;
      return undefined;
    }
  }

  /** Stores a response under `key`. */
  async set(key: string, path: string, request: unknown, response: unknown): Promise<void> {
    const file = this.file(key);
    const dir = join(this.dir, key.slice(0, 2));
    if (!this.made) {
      await mkdir(this.dir, { recursive: true });
      this.made = true;
    }
    await mkdir(dir, { recursive: true });
    const entry: CacheEntry = { key, path, request, response, created_at: new Date().toISOString() };
    const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(tmp, JSON.stringify(entry));
    await rename(tmp, file);
    this.stats.writes++;
  }
}
