import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { ForgeError } from "@nexa/core";
import { newId } from "../ids.js";

/** How far past the limit an over-large upload is still read (and dropped) to answer 413 cleanly. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Content-addressed bytes on the local filesystem: `<root>/sha256/<ab>/<hex>`. An upload streams
 * to a temp file while hashing, is fsynced, verified against the claimed digest, then renamed
 * into place — so a crash at any moment leaves either nothing or a complete, correct blob.
 */
export class FileBlobStore {
  constructor(
    readonly root: string,
    readonly maxBytes: number,
  ) {}

  private pathOf(hex: string): string {
    return join(this.root, "sha256", hex.slice(0, 2), hex);
  }

  /** Writes a stream; returns its digest and size. */
  async put(body: Readable, expectedDigest?: string): Promise<{ digest: string; size: number }> {
    const tmpDir = join(this.root, "tmp");
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, newId("up"));
    const hash = createHash("sha256");
    let size = 0;
    const out = createWriteStream(tmp);
    try {
      await new Promise<void>((resolve, reject) => {
        const tooLarge = () => new ForgeError("payload_too_large", `blob exceeds the ${this.maxBytes}-byte limit (set --max-blob-bytes / NEXA_MAX_BLOB_BYTES)`);
        let over = false;
        body.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (over || size > this.maxBytes) {
            // Keep reading (and dropping) the rest so the client gets the 413 instead of a reset
            // connection; only a client that keeps sending far past the limit is cut off.
            over = true;
            if (size > this.maxBytes + DRAIN_LIMIT_BYTES) {
              body.destroy();
              reject(tooLarge());
            }
            return;
          }
          hash.update(chunk);
          if (!out.write(chunk)) {
            body.pause();
            out.once("drain", () => body.resume());
          }
        });
        body.on("end", () => (over ? reject(tooLarge()) : out.end(() => resolve())));
        body.on("error", reject);
        out.on("error", reject);
      });
      const fh = await open(tmp, "r+");
      await fh.sync();
      await fh.close();
      const digest = `sha256:${hash.digest("hex")}`;
      if (expectedDigest !== undefined && expectedDigest !== digest) {
        throw new ForgeError("invalid_request", `digest mismatch: the body hashes to ${digest}, not ${expectedDigest}`, {
          details: [{ path: "x-nexa-digest", message: `body hashes to ${digest}` }],
        });
      }
      const final = this.pathOf(digest.slice(7));
      await mkdir(join(final, ".."), { recursive: true });
      await rename(tmp, final);
      return { digest, size };
    } finally {
      out.destroy();
      await rm(tmp, { force: true });
    }
  }

  /** Size of a stored blob, or undefined. */
  async size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(digest.slice(7)))).size;
    } catch {
      return undefined;
    }
  }

  /** A read stream over `[start, end]` (inclusive). */
  read(digest: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.pathOf(digest.slice(7)), range ? { start: range.start, end: range.end } : {});
  }
}
