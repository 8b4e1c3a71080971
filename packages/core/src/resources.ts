import { z } from "zod";
import { Digest, Name, Timestamp } from "./common.js";
import { Capabilities } from "./requirements.js";
import { JobType } from "./job.js";
import { Scope } from "./scopes.js";

/** `POST /v1/orgs` body. */
export const CreateOrgRequest = z.strictObject({ name: Name });
export type CreateOrgRequest = z.infer<typeof CreateOrgRequest>;

/** An org. `key` is only present in the creation answer. */
export const Org = z.object({ id: z.string(), name: z.string(), created_at: Timestamp, key: z.string().optional() });
export type Org = z.infer<typeof Org>;

/** `POST /v1/keys` body. */
export const CreateKeyRequest = z.strictObject({
  name: z.string().min(1).max(128),
  scopes: z.array(Scope).min(1).default(["jobs:write"]),
  /** Requests per second this key may make (token bucket); omitted means the server default. */
  rate_limit_rps: z.number().positive().optional(),
  /** Gateway requests per minute for this key; omitted means unlimited. */
  rpm: z.number().int().positive().optional(),
  /** Gateway tokens (prompt + completion) per minute for this key; omitted means unlimited. */
  tpm: z.number().int().positive().optional(),
});
export type CreateKeyRequest = z.infer<typeof CreateKeyRequest>;

/** An API key as listed. The raw `key` appears once, in the creation answer. */
export const ApiKey = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(Scope),
  prefix: z.string(),
  created_at: Timestamp,
  last_used_at: Timestamp.nullable(),
  revoked_at: Timestamp.nullable(),
  /** Gateway requests / tokens per minute (null: unlimited). */
  rpm: z.number().int().nullable().optional(),
  tpm: z.number().int().nullable().optional(),
  key: z.string().optional(),
});
export type ApiKey = z.infer<typeof ApiKey>;

/** `POST /v1/workers` body. */
export const RegisterWorkerRequest = z.strictObject({
  name: z.string().min(1).max(256),
  capabilities: Capabilities,
  /** Job types this worker runs; empty or omitted means every type it has a handler for. */
  accepts: z.array(JobType).optional(),
  version: z.string().optional(),
});
export type RegisterWorkerRequest = z.infer<typeof RegisterWorkerRequest>;

/** A worker as the API returns it. */
export const Worker = z.object({
  id: z.string(),
  name: z.string(),
  capabilities: Capabilities,
  accepts: z.array(JobType),
  status: z.enum(["online", "offline"]),
  version: z.string().nullable(),
  created_at: Timestamp,
  last_seen_at: Timestamp,
  running: z.number().int().nonnegative(),
});
export type Worker = z.infer<typeof Worker>;

/** `POST /v1/workers` answer: the worker plus the lease timing it should follow. */
export const RegisterWorkerResponse = Worker.extend({ lease_ttl_s: z.number(), heartbeat_interval_s: z.number() });
export type RegisterWorkerResponse = z.infer<typeof RegisterWorkerResponse>;

/** A stored blob. */
export const Blob = z.object({ digest: Digest, size: z.number().int().nonnegative(), media_type: z.string().optional() });
export type Blob = z.infer<typeof Blob>;

/** Artifact kinds. */
export const ArtifactKind = z.enum(["dataset", "model", "checkpoint", "report", "other"]);
export type ArtifactKind = z.infer<typeof ArtifactKind>;

/** `POST /v1/artifacts` body. Versions count up per (org, name). */
export const CreateArtifactRequest = z.strictObject({
  name: z.string().min(1).max(256),
  kind: ArtifactKind.default("other"),
  digest: Digest,
  media_type: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  producer_job_id: z.string().optional(),
  /** Artifact ids this one was derived from (lineage). */
  parents: z.array(z.string()).optional(),
  project: Name.default("default"),
});
export type CreateArtifactRequest = z.infer<typeof CreateArtifactRequest>;

/** An artifact. */
export const Artifact = z.object({
  id: z.string(),
  name: z.string(),
  version: z.number().int().positive(),
  kind: ArtifactKind,
  digest: Digest,
  size: z.number().int().nonnegative(),
  media_type: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  producer_job_id: z.string().nullable(),
  parents: z.array(z.string()),
  project: z.string(),
  created_at: Timestamp,
});
export type Artifact = z.infer<typeof Artifact>;

/** `GET /v1/artifacts` query. */
export const ListArtifactsQuery = z.object({
  name: z.string().optional(),
  kind: ArtifactKind.optional(),
  producer_job_id: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().optional(),
});
export type ListArtifactsQuery = z.infer<typeof ListArtifactsQuery>;
