import { ForgeError, type LogStream } from "@nexa/core";
import type { ForgeClient } from "@nexa/sdk";

/** Flush when this many lines are waiting. */
const BATCH_LINES = 500;
/** Flush at least this often while something is waiting. */
const FLUSH_MS = 200;
/** Beyond this, while the control plane is unreachable, the oldest lines are dropped. */
const MAX_BUFFERED = 50_000;
const MAX_LINE = 65_536;

interface Line {
  ts: string;
  stream: LogStream;
  line: string;
}
interface Point {
  name: string;
  step: number;
  value: number;
  ts: string;
}

/**
 * Ships one lease's logs and metric points in batches: every {@link FLUSH_MS} ms, or at once
 * when {@link BATCH_LINES} lines are waiting. One request in flight at a time keeps lines in
 * order. A transient failure keeps the batch for the next flush; `lease_lost` drops everything.
 */
export class LeaseChannel {
  private lines: Line[] = [];
  private points: Point[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | null = null;
  private dropped = 0;
  private lost = false;
  private closed = false;

  constructor(
    private readonly api: Pick<ForgeClient, "sendLogs" | "sendMetrics">,
    private readonly leaseId: string,
    private readonly onLost: () => void,
  ) {}

  log(line: string, stream: LogStream = "stdout"): void {
    if (this.lost || this.closed) return;
    this.lines.push({ ts: new Date().toISOString(), stream, line: line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line });
    if (this.lines.length > MAX_BUFFERED) {
      this.lines.shift();
      this.dropped++;
    }
    if (this.lines.length >= BATCH_LINES) this.kick();
    else this.schedule();
  }

  metric(name: string, step: number, value: number): void {
    if (this.lost || this.closed || !Number.isFinite(value)) return;
    this.points.push({ name, step: Math.max(0, Math.floor(step)), value, ts: new Date().toISOString() });
    if (this.points.length > MAX_BUFFERED) this.points.shift();
    if (this.points.length >= BATCH_LINES) this.kick();
    else this.schedule();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, FLUSH_MS);
  }

  private kick(): void {
    if (this.sending) return;
    this.sending = this.sendAll()
      .catch(() => undefined)
      .finally(() => {
        this.sending = null;
        if (this.lines.length > 0 || this.points.length > 0) this.schedule();
      });
  }

  private async sendAll(): Promise<void> {
    while (!this.lost && (this.lines.length > 0 || this.points.length > 0)) {
      if (this.dropped > 0) {
        this.lines.unshift({ ts: new Date().toISOString(), stream: "system", line: `[${this.dropped} log lines dropped while the control plane was unreachable]` });
        this.dropped = 0;
      }
      const lines = this.lines.slice(0, BATCH_LINES);
      const points = this.points.slice(0, BATCH_LINES);
      try {
        if (lines.length > 0) {
          await this.api.sendLogs(this.leaseId, { lines });
          this.lines.splice(0, lines.length);
        }
        if (points.length > 0) {
          await this.api.sendMetrics(this.leaseId, { points });
          this.points.splice(0, points.length);
        }
      } catch (err) {
        if (err instanceof ForgeError && err.code === "lease_lost") {
          this.markLost();
          return;
        }
        throw err;
      }
    }
  }

  private markLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.lines = [];
    this.points = [];
    this.onLost();
  }

  /**
   * Sends everything given so far now, and resolves once it is with the control plane (or could
   * not be: a transient failure keeps it for the next flush).
   */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.sending) await this.sending;
    if (this.lines.length === 0 && this.points.length === 0) return;
    this.kick();
    while (this.sending) await this.sending;
  }

  /** Sends everything waiting (one retry on a transient failure), then stops the timer. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.sending) await this.sending;
    try {
      await this.sendAll();
    } catch {
      await this.sendAll().catch(() => undefined);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
