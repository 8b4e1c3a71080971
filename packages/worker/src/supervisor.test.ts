import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProcessSupervisor, lineSplitter } from "./supervisor.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nexa-sup-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BURN = (cpuMs: number) =>
  `const s=process.cpuUsage();for(;;){const u=process.cpuUsage(s);if(u.user+u.system>${cpuMs * 1000})break}`;

/** Running (a zombie waiting for init to reap it counts as gone). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function run(argv: string[], extra: { env?: NodeJS.ProcessEnv; graceMs?: number; metrics?: boolean } = {}) {
  const lines: { stream: string; line: string }[] = [];
  const points: { name: string; step: number; value: number }[] = [];
  const proc = await ProcessSupervisor.spawn({
    argv,
    env: { ...process.env, ...extra.env },
    cwd: dir,
    graceMs: extra.graceMs ?? 1000,
    onLine: (stream, line) => lines.push({ stream, line }),
    ...(extra.metrics ? { metricsFile: join(dir, "metrics.jsonl"), onMetric: (name: string, step: number, value: number) => points.push({ name, step, value }) } : {}),
    pidFile: join(dir, "pid"),
  });
  return { proc, lines, points };
}

describe("ProcessSupervisor", () => {
  it("streams stdout and stderr line by line and reports the exit code", async () => {
    const { proc, lines } = await run(["sh", "-c", 'sleep 0.2; echo one; echo two >&2; printf "three\\nfour"; echo "$GREETING"; exit 3'], {
      env: { GREETING: "hello env" },
    });
    const exit = await proc.exited;
    expect(exit.code).toBe(3);
    expect(exit.signal).toBeNull();
    expect(exit.killed).toBe(false);
    expect(lines.filter((l) => l.stream === "stdout").map((l) => l.line)).toEqual(["one", "three", "fourhello env"]);
    expect(lines.filter((l) => l.stream === "stderr").map((l) => l.line)).toEqual(["two"]);
    const [pid, start] = (await readFile(join(dir, "pid"), "utf8")).trim().split(" ");
    expect(Number(pid)).toBe(proc.pid);
    expect(Number(start)).toBeGreaterThan(0);
  });

  it("does not wait for a descendant that left the process group holding stdout", async () => {
    const { proc, lines } = await run(["sh", "-c", "setsid sleep 4 & echo bye"]);
    const t0 = Date.now();
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    expect(lines.map((l) => l.line)).toEqual(["bye"]);
    expect(Date.now() - t0).toBeLessThan(3500);
    expect(exit.wallS).toBeLessThan(1); // measured to the exit, not to the end of the wait for the pipes
  });

  it("reports a program that cannot start", async () => {
    const { proc } = await run([join(dir, "no-such-program")]);
    const exit = await proc.exited;
    expect(exit.spawnError?.message).toMatch(/ENOENT/);
    expect(exit.code).toBeNull();
  });

  it("tails the metrics file into points, the last line even without a newline", async () => {
    const script = [
      `echo '{"step":1,"loss":2.5}' >> "$M"`,
      "sleep 0.3",
      `echo '{"step":2,"loss":2.0,"acc":0.5,"note":"x"}' >> "$M"`,
      `echo 'not json' >> "$M"`,
      `printf '{"loss":1.5}' >> "$M"`,
    ].join("; ");
    const { proc, points } = await run(["sh", "-c", script], { env: { M: join(dir, "metrics.jsonl") }, metrics: true });
    expect((await proc.exited).code).toBe(0);
    expect(points).toEqual([
      { name: "loss", step: 1, value: 2.5 },
      { name: "loss", step: 2, value: 2.0 },
      { name: "acc", step: 2, value: 0.5 },
      { name: "loss", step: 3, value: 1.5 },
    ]);
  });

  it("stops with SIGTERM to the whole group when the process obeys it", async () => {
    const { proc, lines } = await run(["sh", "-c", "sleep 30 & echo $!; wait"], { graceMs: 5000 });
    while (lines.length === 0) await new Promise((r) => setTimeout(r, 20));
    const grandchild = Number(lines[0]?.line);
    expect(await alive(grandchild)).toBe(true);
    proc.stop("canceled");
    const exit = await proc.exited;
    expect(exit.stopReason).toBe("canceled");
    expect(exit.signal).toBe("SIGTERM");
    expect(exit.killed).toBe(false);
    // The signal went to the whole group at once, but the grandchild may exit a moment after the
    // shell did (it has to be scheduled to die, on a loaded box): give it a second, not 30.
    const deadline = Date.now() + 2000;
    while ((await alive(grandchild)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await alive(grandchild)).toBe(false);
  });

  it("sends SIGKILL after the grace period to a process that ignores SIGTERM", async () => {
    const { proc, lines } = await run(["sh", "-c", "trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.05; done"], { graceMs: 600 });
    while (!lines.some((l) => l.line === "ready")) await new Promise((r) => setTimeout(r, 20));
    proc.stop("preempted");
    proc.stop("canceled"); // a second stop neither changes the reason nor restarts the grace period
    const exit = await proc.exited;
    expect(exit.stopReason).toBe("preempted");
    expect(exit.signal).toBe("SIGKILL");
    expect(exit.killed).toBe(true);
    expect(lines.map((l) => l.line)).toContain("got TERM");
    const grace = (exit.killAt ?? 0) - (exit.termAt ?? 0);
    expect(grace).toBeGreaterThanOrEqual(590);
    expect(grace).toBeLessThan(1500);
  });

  it("measures CPU-seconds of the whole process tree", async () => {
    // Two children each burn 0.4 s of CPU (not wall) time; the shell waits for both, so their time
    // lands in its cutime, and outlives them by more than a sampling interval so a sample sees that.
    const burn = BURN(400);
    const { proc } = await run(["sh", "-c", `node -e '${burn}' & node -e '${burn}' & wait; sleep 0.5`]);
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    expect(exit.cpuS).toBeGreaterThan(0.75);
    expect(exit.cpuS).toBeLessThan(1.8);
    expect(exit.wallS).toBeGreaterThan(0.3);
  });

  it("counts an orphaned grandchild whose parent never waited for it", async () => {
    // The subshell starts the burner in the background and exits at once: the burner is
    // re-parented outside the tree but stays in the process group.
    const burner = `${BURN(400)};require("fs").writeFileSync("done","")`;
    // Then the shell burns as much again itself: a total above either part alone shows the
    // orphan's time was kept after it left (whether it lingered as a zombie of init or vanished).
    const { proc } = await run(["sh", "-c", `(node -e '${burner}' &); while [ ! -f done ]; do sleep 0.05; done; node -e '${BURN(400)}'; sleep 0.4`]);
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    expect(exit.cpuS).toBeGreaterThan(0.55);
    expect(exit.cpuS).toBeLessThan(1.8);
  });

  it("counts a single busy process and an idle one apart", async () => {
    const busy = await run(["node", "-e", BURN(500)]);
    const idle = await run(["sleep", "0.6"]);
    const [b, i] = await Promise.all([busy.proc.exited, idle.proc.exited]);
    // The leader's own last sampling interval (≤ 250 ms) is not observable: see ProcessTreeCpu.
    expect(b.cpuS).toBeGreaterThan(0.2);
    expect(b.cpuS).toBeLessThan(1.2);
    expect(i.cpuS).toBeLessThan(0.1);
    expect(i.wallS).toBeGreaterThan(0.55);
  });
});

describe("lineSplitter", () => {
  it("keeps multi-byte characters split across chunks and strips CR", () => {
    const out: string[] = [];
    const s = lineSplitter((l) => out.push(l));
    const bytes = Buffer.from("héllo\r\nwörld\n", "utf8");
    for (const b of bytes) s.write(Buffer.from([b]));
    s.end();
    expect(out).toEqual(["héllo", "wörld"]);
  });
});

