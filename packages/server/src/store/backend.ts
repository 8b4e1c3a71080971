import type { Kysely } from "kysely";
import type { Dialect } from "./migrations.js";
import type { Database } from "./schema.js";

/** What each database backend provides: the same shape for SQLite and PostgreSQL. */
export interface Backend {
  readonly dialect: Dialect;
  readonly db: Kysely<Database>;
  /** Forward a payload to every other replica (PostgreSQL NOTIFY); a no-op on SQLite. */
  publishRemote(payload: string): Promise<void>;
  /** Receive payloads from other replicas; resolves to an unsubscribe function. */
  listen(onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
