import type { Kysely } from "kysely";
import type { Keys, RateLimiter } from "../auth.js";
import type { FileBlobStore } from "../blobs/file-blob-store.js";
import type { Bus } from "../bus.js";
import type { ResolvedServerOptions } from "../config.js";
import type { PromMetrics } from "../prom.js";
import type { Queue } from "../queue.js";
import type { Backend, Database } from "../store/index.js";

/** Everything a route handler may use. */
export interface AppContext {
  options: ResolvedServerOptions;
  backend: Backend;
  db: Kysely<Database>;
  bus: Bus;
  queue: Queue;
  keys: Keys;
  limiter: RateLimiter;
  blobs: FileBlobStore;
  metrics: PromMetrics;
  /** Aborted when the server shuts down: long-polls and streams end. */
  shutdown: AbortSignal;
}
