import { costOf, type PriceTable } from "@nexa/core";
import type { Kysely } from "kysely";
import { newId } from "../ids.js";
import type { Database } from "../store/index.js";
import type { GatewayRequestsTable, UsageTable } from "../store/schema.js";

/** One finished gateway request, as recorded. */
export interface GatewayRecord extends Omit<GatewayRequestsTable, "id"> {
  /** Project the usage is metered to (the deployment's; `default` for providers). */
  project: string;
}

/** Records per write transaction. */
const CHUNK = 50;
/** Buffered records that start a flush before the timer does. */
const EAGER = 500;
/** Past this many unwritten records (a database that keeps failing), the oldest are dropped. */
const MAX_BUFFERED = 100_000;

/**
 * Buffers gateway request records and their metered usage and writes them in batches, off the
 * request path: every `flushIntervalMs`, when {@link EAGER} records are waiting, and on close. A crash
 * loses at most the records of the last flush window.
 */
export class RequestRecorder {
  private buffer: GatewayRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Records dropped because the database kept refusing them. */
  dropped = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly prices: () => PriceTable,
    private readonly flushIntervalMs: number,
  ) {}

  /** Starts the periodic flush. */
  start(): void {
    this.timer = setInterval(() => void this.flush().catch(() => {}), this.flushIntervalMs);
    this.timer.unref();
  }

  /** Queues one record; never waits on the database. */
  add(r: GatewayRecord): void {
    this.buffer.push(r);
    if (this.buffer.length >= EAGER && this.flushing === undefined) void this.flush().catch(() => {});
  }

  /** Writes everything buffered so far (waits for a flush already running, then writes what came since). */
  async flush(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing.catch(() => {});
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    const progress = { written: 0 };
    this.flushing = this.write(batch, progress)
      .catch((err: unknown) => {
        // Keep what was not written for the next flush, unless the backlog is already past its bound.
        this.buffer = batch.slice(progress.written).concat(this.buffer);
        if (this.buffer.length > MAX_BUFFERED) {
          this.dropped += this.buffer.length - MAX_BUFFERED;
          this.buffer = this.buffer.slice(-MAX_BUFFERED);
        }
        throw err;
      })
      .finally(() => {
        this.flushing = undefined;
      });
    await this.flushing;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.flush();
  }

  /**
   * Writes in transactions of {@link CHUNK} records, yielding to the event loop between them: on
   * SQLite every statement runs on the request thread, so small pieces keep each pause short.
   */
  private async write(batch: GatewayRecord[], progress: { written: number }): Promise<void> {
    const prices = this.prices();
    for (let i = 0; i < batch.length; i += CHUNK) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      const chunk = batch.slice(i, i + CHUNK);
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto("gateway_requests")
          .values(chunk.map(({ project: _project, ...r }) => ({ id: newId("gwr"), ...r })))
          .execute();
        const usage: UsageTable[] = [];
        for (const r of chunk) {
          if (r.tokens_in === 0 && r.tokens_out === 0) continue;
          const u = { wall_s: 0, cpu_s: 0, gpu_s: {}, tokens_in: r.tokens_in, tokens_out: r.tokens_out, cost_usd: 0 };
          // One usage row per metered request: `type` gateway, `job_id` gateway:<route>, so
          // GET /v1/usage groups them by type and by route beside the jobs.
          usage.push({ id: newId("use"), org_id: r.org_id, job_id: `gateway:${r.route}`, attempt: 0, project: r.project, type: "gateway", ts: r.ts, wall_s: 0, cpu_s: 0, gpu_s: 0, gpu_detail: "{}", tokens_in: r.tokens_in, tokens_out: r.tokens_out, cost_usd: costOf(u, prices) });
        }
        if (usage.length > 0) await trx.insertInto("usage_records").values(usage).execute();
      });
      progress.written = i + chunk.length;
    }
  }
}
