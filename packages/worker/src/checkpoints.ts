import { randomBytes } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import * as tar from "tar";
import type { Artifact, Job } from "@nexa/core";
import type { ForgeClient } from "@nexa/sdk";
import type { DigestCache } from "./cache.js";

/** The file a process writes last into a checkpoint folder to mark it complete. */
export const COMPLETE_MARKER = "COMPLETE";
const TAR_MEDIA_TYPE = "application/x-tar";

/** Name of the artifact series holding a job's checkpoints: `<job id>/checkpoint`. */
export function checkpointArtifactName(jobId: string): string {
  return `${jobId}/checkpoint`;
}

/** Metadata recorded on a checkpoint artifact: the folder name and, when it ends in digits, the step. */
export function checkpointMetadata(folder: string): { name: string; step?: number } {
  const m = /(\d+)$/.exec(folder);
  return m?.[1] !== undefined ? { name: folder, step: Number(m[1]) } : { name: folder };
}

type LogFn = (line: string) => void;

/** Every checkpoint artifact of a job, oldest version first. */
export async function listCheckpoints(api: Pick<ForgeClient, "listArtifacts">, jobId: string): Promise<Artifact[]> {
  const name = checkpointArtifactName(jobId);
  const all: Artifact[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.listArtifacts({ name, kind: "checkpoint", limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
    all.push(...page.items.filter((a) => a.name === name));
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  return all.sort((a, b) => a.version - b.version);
}

/**
 * Restores the newest complete checkpoint of `job` (the highest version of the artifact series
 * `<job id>/checkpoint`) into `dir`, through the digest cache. Falls back to older versions when
 * one cannot be read. Returns the artifact restored, or null when there is none.
 */
export async function restoreLatestCheckpoint(options: {
  api: Pick<ForgeClient, "listArtifacts">;
  cache: DigestCache;
  jobId: string;
  dir: string;
  log?: LogFn;
}): Promise<Artifact | null> {
  const log = options.log ?? (() => undefined);
  const versions = await listCheckpoints(options.api, options.jobId);
  for (const art of versions.reverse()) {
    const folder = typeof art.metadata.name === "string" ? art.metadata.name : undefined;
    try {
      const file = await options.cache.get(art.digest);
      await mkdir(options.dir, { recursive: true });
      await tar.x({ file, cwd: options.dir });
      if (folder !== undefined && !(await exists(join(options.dir, folder, COMPLETE_MARKER)))) {
        throw new Error(`the archive has no ${folder}/${COMPLETE_MARKER}`);
      }
      log(`restored checkpoint ${folder ?? art.id} (${art.id} v${art.version}, ${art.digest})`);
      return art;
    } catch (err) {
      log(`cannot restore checkpoint ${art.id} v${art.version}: ${(err as Error).message}; trying an older one`);
      if (folder !== undefined) await rm(join(options.dir, folder), { recursive: true, force: true });
    }
  }
  return null;
}

/** Options of a {@link CheckpointUploader}. */
export interface CheckpointUploaderOptions {
  api: Pick<ForgeClient, "createArtifact">;
  cache: DigestCache;
  job: Pick<Job, "id" | "project">;
  /** `NEXA_CHECKPOINT_DIR`. */
  dir: string;
  /** Where archives are built (outside `dir`). */
  scratchDir: string;
  /** Complete checkpoints kept on local disk. @default 2 */
  keepLast?: number;
  log?: LogFn;
  /**
   * Runs after a checkpoint's archive is uploaded and before it is recorded as an artifact: makes
   * what the process reported before the checkpoint durable first (its metrics read and shipped),
   * so a worker killed the moment after the record has lost nothing that the attempt resuming
   * from it will not report again. A failure is logged and does not stop the record.
   */
  beforeRecord?: () => Promise<void>;
}

/**
 * Watches `NEXA_CHECKPOINT_DIR`: each sub-folder that gains a `COMPLETE` file is archived (tar),
 * uploaded as a blob, and recorded as a `checkpoint` artifact named `<job id>/checkpoint` with
 * metadata `{name, step}`. Uploads run one at a time, in completion order. Folders complete
 * when watching starts (a restored checkpoint) are not uploaded again. After each upload only
 * the newest `keepLast` complete folders are kept on disk.
 *
 * Driven by file-system events: one watcher on the folder and one on each sub-folder (a
 * non-recursive watch does not see files created inside sub-folders).
 */
export class CheckpointUploader {
  /** Artifacts recorded so far, in order. */
  readonly uploaded: Artifact[] = [];
  private readonly known = new Set<string>();
  /** Complete folders on disk, oldest first. */
  private readonly complete: string[] = [];
  private readonly watchers = new Map<string, FSWatcher>();
  private chain: Promise<void> = Promise.resolve();
  private scanning: Promise<void> | null = null;
  private rescan = false;
  private closed = false;
  private readonly log: LogFn;

  private constructor(private readonly options: CheckpointUploaderOptions) {
    this.log = options.log ?? (() => undefined);
  }

  /** Starts watching; folders already complete count as restored. */
  static async start(options: CheckpointUploaderOptions): Promise<CheckpointUploader> {
    const u = new CheckpointUploader(options);
    await mkdir(options.dir, { recursive: true });
    for (const name of await subfolders(options.dir)) {
      if (await exists(join(options.dir, name, COMPLETE_MARKER))) {
        u.known.add(name);
        u.complete.push(name);
      }
    }
    u.watch("", options.dir);
    u.poke();
    return u;
  }

  private watch(key: string, path: string): void {
    if (this.closed || this.watchers.has(key)) return;
    try {
      const w = watch(path, () => this.poke());
      w.on("error", () => undefined);
      this.watchers.set(key, w);
    } catch {
      // The folder vanished; the next scan decides.
    }
  }

  /** Re-scans the folder (coalescing bursts of events). */
  poke(): void {
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = this.scan()
      .catch((err: unknown) => this.log(`checkpoint scan failed: ${(err as Error).message}`))
      .finally(() => {
        this.scanning = null;
        if (this.rescan) {
          this.rescan = false;
          this.poke();
        }
      });
  }

  private async scan(): Promise<void> {
    for (const name of await subfolders(this.options.dir)) {
      if (this.known.has(name)) continue;
      this.watch(name, join(this.options.dir, name));
      if (await exists(join(this.options.dir, name, COMPLETE_MARKER))) {
        this.known.add(name);
        this.watchers.get(name)?.close();
        this.watchers.delete(name);
        this.chain = this.chain.then(() => this.upload(name));
      }
    }
  }

  private async upload(name: string): Promise<void> {
    const { dir, scratchDir, job, api, cache } = this.options;
    await mkdir(scratchDir, { recursive: true });
    const file = join(scratchDir, `checkpoint-${randomBytes(6).toString("hex")}.tar`);
    try {
      await tar.c({ cwd: dir, file, portable: true }, [name]);
      const blob = await cache.upload(file, TAR_MEDIA_TYPE);
      await this.options.beforeRecord?.().catch((err: unknown) => this.log(`before recording checkpoint ${name}: ${(err as Error).message}`));
      const art = await api.createArtifact({
        name: checkpointArtifactName(job.id),
        kind: "checkpoint",
        digest: blob.digest,
        media_type: TAR_MEDIA_TYPE,
        metadata: checkpointMetadata(name),
        producer_job_id: job.id,
        project: job.project,
      });
      this.uploaded.push(art);
      this.complete.push(name);
      this.log(`uploaded checkpoint ${name} as ${art.id} v${art.version} (${blob.size} bytes, ${blob.digest})`);
      await this.prune();
    } catch (err) {
      this.log(`checkpoint ${name} upload failed: ${(err as Error).message}`);
    } finally {
      await rm(file, { force: true });
    }
  }

  private async prune(): Promise<void> {
    const keep = this.options.keepLast ?? 2;
    while (this.complete.length > keep) {
      const old = this.complete.shift();
      if (old !== undefined) await rm(join(this.options.dir, old), { recursive: true, force: true });
    }
  }

  /** A last scan (for a checkpoint written during the grace period), then waits for every upload. */
  async close(): Promise<void> {
    while (this.scanning) await this.scanning;
    await this.scan().catch(() => undefined);
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    while (this.scanning) await this.scanning;
    await this.chain;
  }
}

async function subfolders(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
