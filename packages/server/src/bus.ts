import { EventEmitter } from "node:events";
import { matchRequirements, type Capabilities, type JobType, type Requirements } from "@nexa/core";
import type { Backend } from "./store/index.js";
import { newId } from "./ids.js";

/** A change other parts of the control plane (and other replicas) react to. */
export type BusEvent =
  | { kind: "jobs"; org: string; jobs: { type: JobType; requirements: Requirements }[] | "any" }
  | { kind: "job"; org: string; job: string; status: string; attempt: number }
  /** Many jobs reaching one status at once (a claim, a batch finish): `[job id, attempt]` pairs. */
  | { kind: "job-batch"; org: string; status: string; jobs: [string, number][] }
  | { kind: "logs"; org: string; job: string };

/** Jobs per `job-batch` event: one such event stays well inside a NOTIFY payload. */
const BATCH_JOBS = 100;

interface Waiter {
  org: string;
  caps: Capabilities;
  accepts: readonly string[];
  wake: () => void;
}

/**
 * In-process event bus with a bridge to other replicas (PostgreSQL `LISTEN/NOTIFY`). Claim
 * long-polls park here as waiters and are woken by submissions that they could run, so idle
 * workers cost nothing and a new job reaches one within a round trip.
 */
export class Bus {
  private readonly emitter = new EventEmitter();
  private readonly waiters = new Set<Waiter>();
  private readonly origin = newId("rep");
  private outbox: BusEvent[] = [];
  private flushing = false;
  private unlisten: (() => Promise<void>) | undefined;

  constructor(private readonly backend: Backend) {
    this.emitter.setMaxListeners(0);
  }

  /** Starts receiving other replicas' events. */
  async start(): Promise<void> {
    this.unlisten = await this.backend.listen((payload) => {
      const msg = JSON.parse(payload) as { origin: string; events: BusEvent[] };
      if (msg.origin === this.origin) return;
      for (const ev of msg.events) this.deliver(ev);
    });
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    for (const w of this.waiters) w.wake();
    this.waiters.clear();
  }

  /**
   * Publishes that jobs reached `status`: one event per {@link BATCH_JOBS} jobs instead of one per
   * job, so a claim or a batch finish costs one small NOTIFY. Subscribers of each job still hear
   * a plain `job` event.
   */
  publishJobs(org: string, status: string, jobs: [string, number][]): void {
    for (let i = 0; i < jobs.length; i += BATCH_JOBS) this.publish({ kind: "job-batch", org, status, jobs: jobs.slice(i, i + BATCH_JOBS) });
  }

  /** Publishes an event here at once and to other replicas soon after (coalesced per tick). */
  publish(ev: BusEvent): void {
    this.deliver(ev);
    if (this.backend.dialect !== "postgres") return;
    this.outbox.push(ev);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    const events = this.outbox;
    this.outbox = [];
    this.flushing = false;
    // NOTIFY payloads are limited to 8000 bytes: pack as many events as fit in each.
    const head = `{"origin":${JSON.stringify(this.origin)},"events":[`;
    let body: string[] = [];
    let size = head.length + 2;
    const send = async () => {
      if (body.length === 0) return;
      const payload = `${head}${body.join(",")}]}`;
      body = [];
      size = head.length + 2;
      await this.backend.publishRemote(payload).catch(() => {});
    };
    for (const ev of events) {
      const text = JSON.stringify(ev);
      if (size + text.length + 1 > 7000) await send();
      body.push(text);
      size += text.length + 1;
    }
    await send();
  }

  private deliver(ev: BusEvent): void {
    if (ev.kind === "jobs") this.wakeFor(ev.org, ev.jobs);
    else if (ev.kind === "job-batch") {
      for (const [job, attempt] of ev.jobs) {
        const name = `job:${job}`;
        if (this.emitter.listenerCount(name) > 0) this.emitter.emit(name, { kind: "job", org: ev.org, job, status: ev.status, attempt });
      }
    } else this.emitter.emit(`${ev.kind}:${ev.job}`, ev);
  }

  /** Subscribes to one job's state changes or log appends; returns the unsubscribe function. */
  on(kind: "job" | "logs", jobId: string, fn: (ev: BusEvent) => void): () => void {
    const name = `${kind}:${jobId}`;
    this.emitter.on(name, fn);
    return () => this.emitter.off(name, fn);
  }

  /**
   * Registers a claim waiter *before* the claim query runs, so a submission that lands between
   * the query and the wait is not missed. `wait` resolves when woken or after `ms`.
   */
  waiter(org: string, caps: Capabilities, accepts: readonly string[]): { wait: (ms: number, signal?: AbortSignal) => Promise<void>; wake: () => void; cancel: () => void } {
    let woken = false;
    let resolve: (() => void) | undefined;
    const w: Waiter = {
      org,
      caps,
      accepts,
      wake: () => {
        woken = true;
        this.waiters.delete(w);
        resolve?.();
      },
    };
    this.waiters.add(w);
    return {
      wait: (ms, signal) =>
        new Promise<void>((res) => {
          if (woken || signal?.aborted) {
            this.waiters.delete(w);
            res();
            return;
          }
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            this.waiters.delete(w);
            res();
          };
          const timer = setTimeout(done, ms);
          resolve = done;
          signal?.addEventListener("abort", done, { once: true });
        }),
      wake: () => w.wake(),
      cancel: () => this.waiters.delete(w),
    };
  }

  /** Wakes, for each new job, the longest-waiting worker that could run it. */
  private wakeFor(org: string, jobs: { type: JobType; requirements: Requirements }[] | "any"): void {
    if (jobs === "any") {
      for (const w of [...this.waiters]) if (w.org === org) w.wake();
      return;
    }
    for (const job of jobs) {
      for (const w of this.waiters) {
        if (w.org !== org) continue;
        if (!matchRequirements(w.caps, w.accepts, job.type, job.requirements).ok) continue;
        w.wake();
        break;
      }
    }
  }
}
