import { z } from "zod";
import { Timestamp } from "./common.js";

/**
 * Where a deployment is: `starting` (its `deploy` job is queued or running), `healthy` (serving at
 * `url`), `unhealthy` (its worker reports the server down and restarting), `stopping` (asked to
 * stop; its worker has not confirmed yet), `stopped`, `failed` (the job failed for good, or the
 * server kept exiting). Servable means `status = "healthy"` and a `url`.
 */
export const DeploymentStatus = z.enum(["starting", "healthy", "unhealthy", "stopping", "stopped", "failed"]);
export type DeploymentStatus = z.infer<typeof DeploymentStatus>;

/** A served model started by a `deploy` job (`GET /v1/deployments/:id`). */
export const Deployment = z.object({
  /** Stable `dep_…` id: the same across restarts on other workers. */
  id: z.string(),
  /** The model name clients use (the `deploy` spec's `name`); the gateway routes by it. */
  name: z.string(),
  status: DeploymentStatus,
  /** Base URL of the model server (`http://host:port`), once it is healthy. */
  url: z.string().nullable(),
  /** `vllm` or `torch`, once known. */
  backend: z.string().nullable(),
  /** The worker serving it, once its job succeeded. */
  worker_id: z.string().nullable(),
  /** The `deploy` job now backing it (a new one after each restart on another worker). */
  job_id: z.string(),
  /** Times it was started again on another worker because its worker was lost. */
  restarts: z.number().int().nonnegative(),
  error: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
  stopped_at: Timestamp.nullable(),
});
export type Deployment = z.infer<typeof Deployment>;

/** `GET /v1/deployments` query. */
export const ListDeploymentsQuery = z.object({
  status: DeploymentStatus.optional(),
  /** Only deployments of this model name. */
  name: z.string().min(1).max(128).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type ListDeploymentsQuery = z.infer<typeof ListDeploymentsQuery>;

/** One deployment as a worker's supervisor sees it. */
export const WorkerDeploymentState = z.strictObject({
  /** The deployment id (`dep_…`) the `deploy` job was given. */
  id: z.string().min(1).max(128),
  state: z.enum(["starting", "healthy", "restarting", "failed", "stopped"]),
  url: z.string().max(2048).optional(),
  /** Times the worker restarted the server process in place. */
  restarts: z.number().int().nonnegative().default(0),
});
export type WorkerDeploymentState = z.infer<typeof WorkerDeploymentState>;

/** `POST /v1/workers/:id/heartbeat` body: the deployments this worker supervises. */
export const WorkerHeartbeatRequest = z.strictObject({
  deployments: z.array(WorkerDeploymentState).max(1000).default([]),
});
export type WorkerHeartbeatRequest = z.infer<typeof WorkerHeartbeatRequest>;

/** `POST /v1/workers/:id/heartbeat` answer: deployments this worker must stop. */
export const WorkerHeartbeatResponse = z.object({ stop: z.array(z.string()) });
export type WorkerHeartbeatResponse = z.infer<typeof WorkerHeartbeatResponse>;

/**
 * The deployment id a `deploy` job serves: the control plane sets `spec.deployment_id` when it
 * starts a deployment again; a first job's deployment id derives from its job id
 * (`job_01j…` → `dep_01j…`), so worker and control plane agree without a round trip.
 *
 * @example
 * deploymentIdOf("job_01jabc", {}) // "dep_01jabc"
 */
export function deploymentIdOf(jobId: string, spec: { deployment_id?: string | undefined }): string {
  if (spec.deployment_id !== undefined) return spec.deployment_id;
  return `dep_${jobId.startsWith("job_") ? jobId.slice(4) : jobId}`;
}
