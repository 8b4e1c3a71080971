import { mkdir, open, readdir, readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseProcStat } from "./proc-usage.js";

const LOCK = "worker.lock";
/** Folders of a workdir that are not attempt workspaces. */
const RESERVED = new Set(["cache"]);
/** Workdirs held by agents in this process (the lock file cannot tell two of them apart). */
const heldHere = new Set<string>();

async function startTimeOf(pid: number): Promise<string | null> {
  try {
    return String(parseProcStat(await readFile(`/proc/${pid}/stat`, "utf8"))?.starttime ?? "");
  } catch {
    return null;
  }
}

/** Whether `<pid> <starttime>` (as written in a lock or pid file) names a process still running. */
async function stillRunning(record: string): Promise<number | null> {
  const [pidText, start] = record.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const now = await startTimeOf(pid);
  if (now === null) {
    // No /proc (or no such process): fall back to signal 0.
    try {
      process.kill(pid, 0);
      return start === undefined || start === "" ? pid : null;
    } catch {
      return null;
    }
  }
  // A different start time means the pid was reused by an unrelated process.
  return start === undefined || start === "" || start === now ? pid : null;
}

/**
 * Takes a worker's workdir: refuses one held by a live worker (two workers sharing a workdir
 * would clean up each other's workspaces), then clears what a previous worker left behind —
 * killing the process group of any attempt whose worker died (SIGKILL leaves them running,
 * detached) and removing its workspace. Returns a function that releases the lock.
 */
export async function claimWorkdir(workdir: string, log: (line: string) => void): Promise<() => Promise<void>> {
  await mkdir(workdir, { recursive: true });
  const key = resolve(workdir);
  if (heldHere.has(key)) throw new Error(`workdir ${workdir} is in use by another worker in this process; give each worker its own workdir`);
  const lockPath = join(workdir, LOCK);
  try {
    const holder = await stillRunning(await readFile(lockPath, "utf8"));
    if (holder !== null && holder !== process.pid) {
      throw new Error(`workdir ${workdir} is in use by the worker with pid ${holder}; give each worker its own --workdir`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  heldHere.add(key);
  const fh = await open(lockPath, "w");
  await fh.writeFile(`${process.pid} ${(await startTimeOf(process.pid)) ?? ""}\n`);
  await fh.close();

  for (const entry of await readdir(workdir, { withFileTypes: true })) {
    if (!entry.isDirectory() || RESERVED.has(entry.name)) continue;
    const ws = join(workdir, entry.name);
    try {
      const pid = await stillRunning(await readFile(join(ws, ".pid"), "utf8"));
      if (pid !== null) {
        process.kill(-pid, "SIGKILL");
        log(`killed process group ${pid} left by a previous worker in ${entry.name}`);
      }
    } catch {
      // No pid file, or the group is gone.
    }
    await rm(ws, { recursive: true, force: true });
  }
  return async () => {
    heldHere.delete(key);
    await rm(lockPath, { force: true });
  };
}
