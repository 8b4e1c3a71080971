import { createHash } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DigestCache } from "@nexa/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startForge, type Forge } from "./helpers.js";

let forge: Forge;
let dir: string;
beforeAll(async () => {
  forge = await startForge();
  dir = await mkdtemp(join(tmpdir(), "nexa-cache-"));
});
afterAll(async () => {
  await forge?.close();
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("DigestCache against a real blob store", () => {
  it("downloads once, verifies, and materialises read-only hard links; artifact ids resolve to their digest", async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
    const { digest } = await forge.admin.putBlob(bytes);
    const art = await forge.admin.createArtifact({ name: "cache-test/data", kind: "dataset", digest });
    const cache = new DigestCache(join(dir, "c1"), forge.admin);
    // Concurrent requests share one download.
    const [p1, p2] = await Promise.all([cache.get(digest), cache.get(digest)]);
    expect(p1).toBe(p2);
    expect(p1).toBe(join(dir, "c1", "sha256", digest.slice(7)));
    expect(sha(await readFile(p1))).toBe(digest);
    expect(await readdir(join(dir, "c1", "tmp"))).toEqual([]);

    const dest = join(dir, "ws", "inputs", "sub", "data.bin");
    const resolved = await cache.materialize(art.id, dest);
    expect(resolved).toEqual({ digest, artifactId: art.id });
    const [a, b] = await Promise.all([stat(p1), stat(dest)]);
    expect(b.ino).toBe(a.ino);
    expect(b.mode & 0o777).toBe(0o444);

    // Served from the cache from now on: a second materialisation works with the server gone.
    const offline = new DigestCache(join(dir, "c1"), { getBlob: () => Promise.reject(new Error("offline")) } as never);
    await offline.materialize(digest, join(dir, "ws2", "x"));
    expect((await stat(join(dir, "ws2", "x"))).size).toBe(bytes.length);
  });

  it("refuses bytes that do not match their digest and leaves nothing behind", async () => {
    const good = Buffer.from("the real content\n");
    const { digest } = await forge.admin.putBlob(good);
    // Corrupt the server's copy on disk, as bit rot or a bad disk would.
    const hex = digest.slice(7);
    const onDisk = join(forge.home, "blobs", "sha256", hex.slice(0, 2), hex);
    await chmod(onDisk, 0o644);
    await writeFile(onDisk, "the fake content\n");
    const cache = new DigestCache(join(dir, "c2"), forge.admin);
    await expect(cache.get(digest)).rejects.toThrow(/hashes to sha256:/);
    await expect(stat(cache.pathOf(digest))).rejects.toThrow(/ENOENT/);
    expect(await readdir(join(dir, "c2", "tmp"))).toEqual([]);
  });

  it("uploads a file once and adopts it into the cache", async () => {
    const file = join(dir, "upload.txt");
    await writeFile(file, "uploaded once\n");
    const cache = new DigestCache(join(dir, "c3"), forge.admin);
    const first = await cache.upload(file, "text/plain");
    expect(first.digest).toBe(sha(Buffer.from("uploaded once\n")));
    expect(await forge.admin.headBlob(first.digest)).toEqual({ size: first.size });
    expect(await readFile(cache.pathOf(first.digest), "utf8")).toBe("uploaded once\n");
    expect(await cache.upload(file)).toEqual(first);
  });

  it("says which input is missing", async () => {
    const cache = new DigestCache(join(dir, "c4"), forge.admin);
    await expect(cache.get(`sha256:${"1".repeat(64)}`)).rejects.toMatchObject({ code: "not_found" });
    await expect(cache.resolve("art_doesnotexist")).rejects.toMatchObject({ code: "not_found" });
  });

  it("stays under maxBytes by evicting the least recently used blob", async () => {
    const put = async (fill: number) => (await forge.admin.putBlob(Buffer.alloc(1000, fill))).digest;
    const [a, b, c] = [await put(1), await put(2), await put(3)];
    const cache = new DigestCache(join(dir, "c5"), forge.admin, { maxBytes: 2500 });
    const pause = () => new Promise((r) => setTimeout(r, 20));
    await cache.get(a);
    await pause();
    await cache.get(b);
    await pause();
    await cache.get(a); // a is now the most recently used
    await pause();
    const held = join(dir, "ws5", "b.bin");
    await cache.materialize(b, held);
    await pause();
    await cache.get(a);
    await pause();
    await cache.get(c);
    const present = async (d: string) => stat(cache.pathOf(d)).then(() => true, () => false);
    expect([await present(a), await present(b), await present(c)]).toEqual([true, false, true]);
    // A materialised input survives the eviction of its cache entry.
    expect((await readFile(held)).length).toBe(1000);
  });
});
