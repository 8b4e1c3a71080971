import { spawn, type ChildProcess } from "node:child_process";
import { watch, type FSWatcher } from "node:fs";
import { open, readFile, writeFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { parseProcStat, ProcessTreeCpu } from "./proc-usage.js";

/** Longest log line shipped as one line; longer output is cut into pieces of this size. */
const MAX_LINE = 16_384;
/** After the process exits, how long to wait for its output pipes to close. */
const DRAIN_MS = 2000;

/** Options of {@link ProcessSupervisor.spawn}. */
export interface SuperviseOptions {
  /** Program and arguments (no shell). */
  argv: readonly string[];
  /** The complete environment of the process. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Called with each line of stdout / stderr (without the newline). */
  onLine: (stream: "stdout" | "stderr", line: string) => void;
  /** A JSON-lines file the process appends metrics to; created empty before the start. */
  metricsFile?: string;
  /** Called with each numeric field of each metrics line. */
  onMetric?: (name: string, step: number, value: number) => void;
  /** Called with metrics lines that are not JSON objects. */
  onBadMetric?: (line: string) => void;
  /** Time between SIGTERM and SIGKILL when stopped. */
  graceMs: number;
  /** Written with `<pid> <starttime>` once running, so a restarted worker can kill a leftover group. */
  pidFile?: string;
  /** CPU sampling interval. @default 250 */
  sampleMs?: number;
}

/** How a supervised process ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the program could not be started at all (e.g. ENOENT). */
  spawnError?: Error;
  /** Why it was stopped, when {@link ProcessSupervisor.stop} was called before it exited. */
  stopReason?: string;
  /** Whether the grace period ran out and the group got SIGKILL. */
  killed: boolean;
  /** ms since the epoch. */
  startedAt: number;
  endedAt: number;
  termAt?: number;
  killAt?: number;
  wallS: number;
  /** CPU-seconds of the whole process tree (see {@link ProcessTreeCpu} for the method). */
  cpuS: number;
}

/**
 * Runs one process in its own process group under the job contract's stop protocol: stop is
 * SIGTERM to the whole group, a grace period, then SIGKILL. Streams stdout/stderr line by line,
 * tails the metrics file, and measures wall and CPU time of the process tree.
 *
 * @example
 * const proc = ProcessSupervisor.spawn({ argv: ["python", "train.py"], env, cwd, graceMs: 30_000, onLine: (s, l) => log(l, s) });
 * signal.addEventListener("abort", () => proc.stop(String(signal.reason)));
 * const exit = await proc.exited;
 */
export class ProcessSupervisor {
  /** Resolves once the process has exited and its output is drained. */
  readonly exited: Promise<ProcessExit>;
  readonly pid: number | undefined;
  private readonly child: ChildProcess;
  private stopReason: string | undefined;
  private termAt: number | undefined;
  private killAt: number | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private done = false;

  private constructor(
    private readonly options: SuperviseOptions,
    private readonly metrics: MetricsTail | null,
  ) {
    const [program, ...args] = options.argv;
    if (program === undefined) throw new TypeError("argv needs at least the program to run");
    const startedAt = Date.now();
    this.child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env,
      // Its own process group, so a stop reaches every process it started (torchrun's workers, a shell's children).
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.pid = this.child.pid;
    const cpu = this.pid === undefined ? null : new ProcessTreeCpu(this.pid);
    const splitInto = (stream: "stdout" | "stderr") => lineSplitter((line) => options.onLine(stream, line));
    const out = splitInto("stdout");
    const err = splitInto("stderr");
    this.child.stdout?.on("data", (b: Buffer) => out.write(b));
    this.child.stderr?.on("data", (b: Buffer) => err.write(b));

    // Timers here: CPU sampling (which also re-reads the metrics file, in case file events are lost).
    const sampler = cpu
      ? setInterval(() => {
          cpu.sample().catch(() => undefined);
          this.metrics?.poke();
        }, options.sampleMs ?? 250)
      : undefined;
    if (cpu) cpu.sample().catch(() => undefined);

    this.exited = new Promise<ProcessExit>((resolve) => {
      let spawnError: Error | undefined;
      let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let drain: NodeJS.Timeout | undefined;
      let exitedAt: number | undefined;
      const finish = async () => {
        if (this.done) return;
        this.done = true;
        if (sampler) clearInterval(sampler);
        if (this.graceTimer) clearTimeout(this.graceTimer);
        if (drain) clearTimeout(drain);
        const endedAt = exitedAt ?? Date.now();
        if (cpu) await cpu.sample().catch(() => undefined);
        out.end();
        err.end();
        await this.metrics?.close();
        const exit: ProcessExit = {
          code: exitInfo?.code ?? null,
          signal: exitInfo?.signal ?? null,
          killed: this.killAt !== undefined,
          startedAt,
          endedAt,
          wallS: (endedAt - startedAt) / 1000,
          cpuS: cpu?.cpuSeconds ?? 0,
        };
        if (spawnError) exit.spawnError = spawnError;
        if (this.stopReason !== undefined) exit.stopReason = this.stopReason;
        if (this.termAt !== undefined) exit.termAt = this.termAt;
        if (this.killAt !== undefined) exit.killAt = this.killAt;
        resolve(exit);
      };
      this.child.once("error", (e) => {
        spawnError = e;
        if (this.pid === undefined) void finish();
      });
      this.child.once("exit", (code, signal) => {
        exitInfo = { code, signal };
        exitedAt = Date.now();
        // The leader is gone; whatever it left running in its group goes with it.
        this.signalGroup("SIGKILL");
        if (cpu) cpu.sample().catch(() => undefined);
        // `close` follows once stdout/stderr are drained, which the group kill guarantees — unless
        // a descendant left the group (setsid) still holding them: then stop reading after a moment.
        drain = setTimeout(() => {
          this.child.stdout?.destroy();
          this.child.stderr?.destroy();
          void finish();
        }, DRAIN_MS);
        drain.unref();
      });
      this.child.once("close", () => void finish());
    });
  }

  /** Starts `options.argv`; never throws for a missing program (see {@link ProcessExit.spawnError}). */
  static async spawn(options: SuperviseOptions): Promise<ProcessSupervisor> {
    let tail: MetricsTail | null = null;
    if (options.metricsFile !== undefined) {
      await writeFile(options.metricsFile, "", { flag: "a" });
      tail = new MetricsTail(options.metricsFile, options.onMetric ?? (() => undefined), options.onBadMetric ?? (() => undefined));
    }
    const proc = new ProcessSupervisor(options, tail);
    if (proc.pid !== undefined && options.pidFile !== undefined) await writePidFile(options.pidFile, proc.pid).catch(() => undefined);
    return proc;
  }

  /** Whether the process has exited. */
  get hasExited(): boolean {
    return this.done || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Reads the metrics file to its current end: every point written so far has reached `onMetric`. */
  async readMetrics(): Promise<void> {
    await this.metrics?.drain();
  }

  /**
   * SIGTERM to the group, then SIGKILL after the grace period. Idempotent: the first reason is
   * kept and the grace period is not restarted.
   */
  stop(reason: string): void {
    if (this.stopReason !== undefined || this.hasExited) return;
    this.stopReason = reason;
    this.termAt = Date.now();
    this.signalGroup("SIGTERM");
    this.graceTimer = setTimeout(() => {
      if (this.hasExited) return;
      this.killAt = Date.now();
      this.signalGroup("SIGKILL");
    }, this.options.graceMs);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (this.pid === undefined) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is already empty.
    }
  }
}

async function writePidFile(path: string, pid: number): Promise<void> {
  let start = "";
  try {
    start = String(parseProcStat(await readFile(`/proc/${pid}/stat`, "utf8"))?.starttime ?? "");
  } catch {
    // No /proc: the pid alone will do.
  }
  await writeFile(path, `${pid} ${start}\n`);
}

/** Splits a byte stream into lines (UTF-8 safe), cutting lines longer than {@link MAX_LINE}. */
export function lineSplitter(onLine: (line: string) => void): { write(b: Buffer): void; end(): void } {
  const decoder = new StringDecoder("utf8");
  let buf = "";
  const emit = (line: string) => onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  const drain = () => {
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      emit(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    while (buf.length > MAX_LINE) {
      emit(buf.slice(0, MAX_LINE));
      buf = buf.slice(MAX_LINE);
    }
  };
  return {
    write(b) {
      buf += decoder.write(b);
      drain();
    },
    end() {
      buf += decoder.end();
      drain();
      if (buf !== "") emit(buf);
      buf = "";
    },
  };
}

/**
 * Follows a JSON-lines metrics file: each line `{"step":12,"loss":2.31}` yields one point per
 * numeric field other than `step`. Driven by file-system events on its folder (plus the
 * supervisor's sampling tick as a fallback), reading from the last offset.
 */
class MetricsTail {
  private offset = 0;
  private partial = "";
  private autoStep = 0;
  private reading: Promise<void> | null = null;
  private again = false;
  private watcher: FSWatcher | null = null;

  constructor(
    private readonly file: string,
    private readonly onMetric: (name: string, step: number, value: number) => void,
    private readonly onBad: (line: string) => void,
  ) {
    const name = basename(file);
    try {
      this.watcher = watch(dirname(file), (_event, changed) => {
        if (changed === null || changed === name) this.poke();
      });
      this.watcher.on("error", () => undefined);
    } catch {
      this.watcher = null;
    }
  }

  /** Reads whatever was appended since the last read. */
  poke(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.read()
      .catch(() => undefined)
      .finally(() => {
        this.reading = null;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  private async read(): Promise<void> {
    const fh = await open(this.file, "r");
    try {
      const { size } = await fh.stat();
      if (size < this.offset) this.offset = 0; // truncated and rewritten
      while (this.offset < size) {
        const chunk = Buffer.alloc(Math.min(1 << 20, size - this.offset));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.partial += chunk.subarray(0, bytesRead).toString("utf8");
        let nl: number;
        while ((nl = this.partial.indexOf("\n")) >= 0) {
          this.line(this.partial.slice(0, nl));
          this.partial = this.partial.slice(nl + 1);
        }
      }
    } finally {
      await fh.close();
    }
  }

  private line(raw: string): void {
    const line = raw.trim();
    if (line === "") return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      this.onBad(line);
      return;
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
      this.onBad(line);
      return;
    }
    const rec = obj as Record<string, unknown>;
    const step = typeof rec.step === "number" && Number.isInteger(rec.step) && rec.step >= 0 ? rec.step : this.autoStep;
    this.autoStep = step + 1;
    for (const [name, value] of Object.entries(rec)) {
      if (name === "step" || typeof value !== "number" || !Number.isFinite(value)) continue;
      this.onMetric(name, step, value);
    }
  }

  /** Reads the file to its current end (what the process has written so far reaches onMetric). */
  async drain(): Promise<void> {
    this.poke();
    while (this.reading) await this.reading;
  }

  /** Final read (including a last line without a newline), then stop watching. */
  async close(): Promise<void> {
    this.watcher?.close();
    while (this.reading) await this.reading;
    await this.read().catch(() => undefined);
    if (this.partial.trim() !== "") this.line(this.partial);
    this.partial = "";
  }
}
