import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, copyFile, link, mkdir, open, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { ForgeError, type DataRef } from "@nexa/core";
import type { ForgeClient } from "@nexa/sdk";

/** The part of the API the cache needs. */
export type BlobApi = Pick<ForgeClient, "getBlob" | "headBlob" | "putBlob" | "getArtifact">;

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

/** Options of a {@link DigestCache}. */
export interface DigestCacheOptions {
  /**
   * Keep the cache under this many bytes by evicting the least recently used blobs after each
   * addition. Eviction never breaks a running attempt: its inputs are hard links (or copies), so
   * their bytes stay until the workspace goes. @default no limit
   */
  maxBytes?: number;
}

/** A blob resolved from a {@link DataRef}. */
export interface ResolvedRef {
  digest: string;
  /** Set when the ref was an artifact id. */
  artifactId?: string;
}

/**
 * The worker's content-addressed cache: each blob is downloaded once per worker, verified
 * (SHA-256 computed while streaming), and renamed atomically into `<root>/sha256/<hex>`, so a
 * reader never sees a partial file. Concurrent requests for one digest share one download.
 *
 * @example
 * const cache = new DigestCache(join(workdir, "cache"), api);
 * const path = await cache.get("sha256:…");
 * await cache.materialize("art_01H…", join(inputsDir, "data.jsonl"));
 */
export class DigestCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    /** `<workdir>/cache`. */
    readonly root: string,
    private readonly api: BlobApi,
    private readonly options: DigestCacheOptions = {},
  ) {}

  /** Where a digest lives in the cache (whether or not it is there yet). */
  pathOf(digest: string): string {
    return join(this.root, "sha256", hexOf(digest));
  }

  /** A blob digest or artifact id → its digest (artifact ids go through `GET /v1/artifacts/:id`). */
  async resolve(ref: DataRef): Promise<ResolvedRef> {
    if (DIGEST_RE.test(ref)) return { digest: ref };
    if (ref.startsWith("art_")) {
      const art = await this.api.getArtifact(ref);
      return { digest: art.digest, artifactId: art.id };
    }
    throw new ForgeError("invalid_request", `not a blob digest or artifact id: ${ref}`);
  }

  /** The cached file of `digest`, downloading and verifying it first if needed. */
  get(digest: string): Promise<string> {
    const hex = hexOf(digest);
    const existing = this.inflight.get(hex);
    if (existing) return existing;
    const p = this.fetchWithRetries(digest).finally(() => this.inflight.delete(hex));
    this.inflight.set(hex, p);
    return p;
  }

  /**
   * A dropped connection or a bad read should not fail a job: up to three tries, except when the
   * server says the blob is not there or the key may not read it.
   */
  private async fetchWithRetries(digest: string): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetch(digest);
      } catch (err) {
        const final = err instanceof ForgeError && ["not_found", "unauthenticated", "forbidden", "invalid_request"].includes(err.code);
        if (final || attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
  }

  private async fetch(digest: string): Promise<string> {
    const dest = this.pathOf(digest);
    if (await exists(dest)) {
      await touch(dest);
      return dest;
    }
    await mkdir(dirname(dest), { recursive: true });
    const tmp = join(this.root, "tmp", `${hexOf(digest)}.${randomBytes(6).toString("hex")}`);
    await mkdir(dirname(tmp), { recursive: true });
    try {
      const res = await this.api.getBlob(digest);
      if (!res.body) throw new ForgeError("unavailable", `empty body downloading ${digest}`, { retryable: true });
      const hash = createHash("sha256");
      const hasher = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), hasher, createWriteStream(tmp, { flags: "wx" }));
      const got = `sha256:${hash.digest("hex")}`;
      if (got !== digest) {
        throw new ForgeError("internal", `downloaded blob ${digest} hashes to ${got}; discarded`, { retryable: true });
      }
      await fsyncFile(tmp);
      await chmod(tmp, 0o444);
      await rename(tmp, dest);
      await this.evict(dest);
      return dest;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Evicts least recently used entries (never `keep`) until the cache fits `maxBytes`. */
  private async evict(keep: string): Promise<void> {
    const max = this.options.maxBytes;
    if (max === undefined) return;
    const dir = join(this.root, "sha256");
    const entries: { path: string; size: number; used: number }[] = [];
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      const st = await stat(path).catch(() => null);
      if (st?.isFile()) entries.push({ path, size: st.size, used: st.mtimeMs });
    }
    let total = entries.reduce((n, e) => n + e.size, 0);
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= max) break;
      if (e.path === keep) continue;
      await rm(e.path, { force: true });
      total -= e.size;
    }
  }

  /**
   * Materialises `ref` at `dest`, read-only (0444): a hard link to the cached file when the
   * cache and `dest` share a file system, a copy otherwise.
   */
  async materialize(ref: DataRef, dest: string): Promise<ResolvedRef> {
    const resolved = await this.resolve(ref);
    await mkdir(dirname(dest), { recursive: true });
    // Twice: another attempt's download may evict the entry between `get` and the link.
    for (let tries = 1; ; tries++) {
      const src = await this.get(resolved.digest);
      await rm(dest, { force: true });
      try {
        await link(src, dest);
        return resolved;
      } catch {
        try {
          await copyFile(src, dest);
          await chmod(dest, 0o444);
          return resolved;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT" || tries >= 2) throw err;
        }
      }
    }
  }

  /**
   * Uploads a file as a blob (skipped when the server already has it) and keeps it in the cache,
   * so a later job on this worker that reads it does not download it again.
   */
  async upload(path: string, mediaType?: string): Promise<{ digest: string; size: number }> {
    const { digest, size } = await hashFile(path);
    const have = await this.api.headBlob(digest);
    if (have === null) {
      const body = Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
      const put = await this.api.putBlob(body, { digest, ...(mediaType !== undefined ? { mediaType } : {}) });
      if (put.digest !== digest) throw new ForgeError("internal", `server stored ${path} as ${put.digest}, expected ${digest}`);
    }
    await this.adopt(path, digest);
    return { digest, size };
  }

  /** Best effort: links a file whose digest is known into the cache. */
  private async adopt(path: string, digest: string): Promise<void> {
    const dest = this.pathOf(digest);
    if (await exists(dest)) return;
    const tmp = join(this.root, "tmp", `${hexOf(digest)}.${randomBytes(6).toString("hex")}`);
    try {
      await mkdir(dirname(tmp), { recursive: true });
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(path, tmp);
      await chmod(tmp, 0o444);
      await rename(tmp, dest);
      await this.evict(dest);
    } catch {
      await rm(tmp, { force: true });
    }
  }
}

/** Marks a cache entry used now (mtime: atime is often not updated, `noatime`). */
async function touch(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => undefined);
}

/** SHA-256 and size of a file, streamed. */
export async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

function hexOf(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m?.[1]) throw new ForgeError("invalid_request", `not a blob digest: ${digest}`);
  return m[1];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
