import { readdir, readFile } from "node:fs/promises";

/**
 * Linux exposes /proc times in USER_HZ ticks, which the kernel fixes at 100 per second for the
 * /proc ABI on every architecture Forge runs on (it is not the scheduler's HZ).
 */
const TICKS_PER_S = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  /** utime + stime, in ticks. */
  self: number;
  /** cutime + cstime: children this process has waited for, in ticks. */
  children: number;
  starttime: number;
}

interface Tracked {
  stat: ProcStat;
}

/** Parses one `/proc/<pid>/stat`; `comm` may hold spaces and parentheses, so split after the last `)`. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const pid = Number(text.slice(0, text.indexOf(" ")));
  // Fields after `comm`: index 0 is field 3 (state), so field n is at index n - 3.
  const f = text.slice(close + 2).split(" ");
  const num = (n: number) => Number(f[n - 3]);
  const stat = { pid, ppid: num(4), pgrp: num(5), self: num(14) + num(15), children: num(16) + num(17), starttime: num(22) };
  return Number.isFinite(stat.pid) && Number.isFinite(stat.self) ? stat : null;
}

async function scanProc(): Promise<Map<number, ProcStat> | null> {
  let names: string[];
  try {
    names = await readdir("/proc");
  } catch {
    return null;
  }
  const out = new Map<number, ProcStat>();
  await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(async (n) => {
        try {
          const stat = parseProcStat(await readFile(`/proc/${n}/stat`, "utf8"));
          if (stat) out.set(stat.pid, stat);
        } catch {
          // Exited between readdir and read: its time is accounted for by the rules below.
        }
      }),
  );
  return out;
}

/**
 * CPU-seconds of a process tree, measured by sampling `/proc`.
 *
 * Method. Each {@link sample} reads `/proc/<pid>/stat` of every process and takes the tree: the
 * leader's process group plus anything whose parent chain reaches the leader (so children that
 * moved to their own group still count). A live process contributes `utime+stime` (its own time)
 * plus `cutime+cstime` (children it has already waited for). When a process disappears between
 * samples its last figure is kept only if its parent is no longer in the tree: a parent that is
 * still there reaps it and its time shows up in that parent's `cutime`, so keeping both would
 * count it twice. The leader's parent is the worker, so its own last figure is always kept.
 * The reported figure is the running maximum of the total, and the caller takes a last sample
 * when the leader exits.
 *
 * Precision: a process's time after its last sample is lost (at most one sampling interval of
 * the leader's own CPU, and all of a grandchild that lived and died unreaped between two samples
 * under a parent that then died too). Node reaps the leader itself, so its final rusage is not
 * observable; `/proc/self/stat`'s `cutime` would be, but mixes every child of the worker.
 * On systems without `/proc` the figure stays 0.
 */
export class ProcessTreeCpu {
  private readonly tracked = new Map<number, Tracked>();
  private departedTicks = 0;
  private maxTicks = 0;
  private running: Promise<void> | null = null;

  constructor(readonly leaderPid: number) {}

  /** CPU-seconds so far (the running maximum). */
  get cpuSeconds(): number {
    return this.maxTicks / TICKS_PER_S;
  }

  /** Takes one sample; concurrent calls share the sample in flight. */
  sample(): Promise<void> {
    this.running ??= this.doSample().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async doSample(): Promise<void> {
    const all = await scanProc();
    if (all === null) return;
    const inTree = new Set<number>();
    const isDescendant = (pid: number, depth = 0): boolean => {
      if (pid === this.leaderPid) return true;
      const s = all.get(pid);
      if (!s || depth > 64 || s.ppid <= 1) return false;
      return isDescendant(s.ppid, depth + 1);
    };
    for (const s of all.values()) if (s.pgrp === this.leaderPid || isDescendant(s.pid)) inTree.add(s.pid);

    for (const [pid, t] of this.tracked) {
      const now = all.get(pid);
      const gone = !now || now.starttime !== t.stat.starttime || !inTree.has(pid);
      if (!gone) continue;
      this.tracked.delete(pid);
      const parentStillHere = inTree.has(t.stat.ppid);
      if (!parentStillHere) this.departedTicks += t.stat.self + t.stat.children;
    }
    let live = 0;
    for (const pid of inTree) {
      const s = all.get(pid);
      if (!s) continue;
      this.tracked.set(pid, { stat: s });
      live += s.self + s.children;
    }
    this.maxTicks = Math.max(this.maxTicks, this.departedTicks + live);
  }
}
