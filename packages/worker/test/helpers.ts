import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isTerminal, type Job } from "@nexa/core";
import { ForgeClient } from "@nexa/sdk";
import { startServer } from "@nexa/server";
import { WorkerAgent, type WorkerAgentOptions } from "@nexa/worker";

/** A real control plane on an ephemeral port in a temporary NEXA_HOME, plus workers to attach. */
export interface Forge {
  home: string;
  url: string;
  /** Admin client (submits jobs, reads results). */
  admin: ForgeClient;
  /** A key with only the `worker` scope, as a real worker would hold. */
  workerKey: string;
  /** Starts a worker agent against this server with its own workdir. */
  worker(options?: Partial<WorkerAgentOptions>): Promise<{ agent: WorkerAgent; log: string[]; workdir: string }>;
  close(): Promise<void>;
}

/** Starts a server (`leaseTtlS`, `heartbeatIntervalS` short so recovery tests are quick). */
export async function startForge(opts: { leaseTtlS?: number; heartbeatIntervalS?: number } = {}): Promise<Forge> {
  const home = await mkdtemp(join(tmpdir(), "nexa-itest-"));
  const server = await startServer({
    home,
    port: 0,
    host: "127.0.0.1",
    leaseTtlS: opts.leaseTtlS ?? 30,
    heartbeatIntervalS: opts.heartbeatIntervalS ?? 0.5,
    rateLimitRps: 0,
  });
  if (server.adminKey === undefined) throw new Error("the server did not create an admin key");
  const admin = new ForgeClient({ url: server.url, apiKey: server.adminKey });
  const workerKey = (await admin.createKey({ name: "test-worker", scopes: ["worker"] })).key;
  if (workerKey === undefined) throw new Error("no raw key in the creation answer");
  const agents: WorkerAgent[] = [];
  let n = 0;
  return {
    home,
    url: server.url,
    admin,
    workerKey,
    async worker(options = {}) {
      const workdir = options.workdir ?? join(home, `work-${++n}`);
      const log: string[] = [];
      const agent = new WorkerAgent({
        url: server.url,
        apiKey: workerKey,
        name: `test-worker-${n}`,
        gpus: 0,
        graceMs: 1000,
        claimWaitS: 5,
        workdir,
        log: (l) => log.push(l),
        ...options,
      });
      agents.push(agent);
      await agent.start();
      return { agent, log, workdir };
    },
    async close() {
      await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
      await server.close();
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Waits for a job to reach a terminal status (event-driven through the SDK). */
export async function waitDone(admin: ForgeClient, id: string, timeoutMs = 20_000): Promise<Job> {
  const job = await admin.waitForJob(id, timeoutMs);
  if (!isTerminal(job.status)) throw new Error(`job ${id} is ${job.status}`);
  return job;
}

/** Waits for an event of a job matching `pred` (e.g. it started running). */
export async function waitForEvent(admin: ForgeClient, id: string, pred: (ev: { type: string; status: string; attempt: number }) => boolean, timeoutMs = 20_000): Promise<void> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`no matching event for ${id} within ${timeoutMs} ms`)), timeoutMs);
  try {
    for await (const ev of admin.events(id, { signal: ctl.signal })) if (pred(ev)) return;
    throw new Error(`job ${id} ended without a matching event`);
  } catch (err) {
    if (ctl.signal.aborted) throw ctl.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
