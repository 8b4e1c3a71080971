import type { Generated } from "kysely";

/** Timestamps are epoch milliseconds; JSON columns are text holding JSON. */
export interface OrgsTable {
  id: string;
  name: string;
  created_at: number;
  max_running: number | null;
  budget_usd: number | null;
}
export interface ProjectsTable {
  org_id: string;
  name: string;
  created_at: number;
}
export interface ApiKeysTable {
  id: string;
  org_id: string;
  name: string;
  hash: string;
  prefix: string;
  scopes: string;
  instance_admin: number;
  rate_limit_rps: number | null;
  /** Gateway requests per minute (null: unlimited). */
  rpm: number | null;
  /** Gateway tokens per minute (null: unlimited). */
  tpm: number | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}
export interface WorkersTable {
  id: string;
  org_id: string;
  name: string;
  capabilities: string;
  accepts: string;
  status: string;
  version: string | null;
  created_at: number;
  last_seen_at: number;
}
export interface JobsTable {
  id: string;
  org_id: string;
  project: string;
  type: string;
  name: string | null;
  status: string;
  spec: string;
  priority: number;
  requirements: string;
  limits: string;
  retry: string;
  /** Requirement columns the claim query filters on in SQL. */
  req_gpus: number;
  req_cpus: number;
  req_memory_gb: number;
  req_complex: number;
  attempt: number;
  failures: number;
  max_attempts: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  run_after: number;
  worker_id: string | null;
  lease_id: string | null;
  outputs: string | null;
  error: string | null;
  usage: string;
  cancel_requested: number;
  idempotency_key: string | null;
  workflow_run_id: string | null;
  log_seq: number;
}
export interface AttemptsTable {
  /** The lease id: the fencing token of this attempt. */
  id: string;
  job_id: string;
  org_id: string;
  worker_id: string;
  attempt: number;
  status: string;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  manifest: string | null;
  usage: string | null;
  error: string | null;
}
export interface JobLogsTable {
  job_id: string;
  seq: number;
  attempt: number;
  ts: number;
  stream: string;
  line: string;
}
export interface JobMetricsTable {
  job_id: string;
  name: string;
  step: number;
  ts: number;
  value: number;
}
export interface JobEventsTable {
  seq: Generated<number>;
  job_id: string;
  org_id: string;
  ts: number;
  type: string;
  status: string;
  attempt: number;
  data: string | null;
}
export interface BlobsTable {
  digest: string;
  size: number;
  media_type: string | null;
  created_at: number;
}
export interface BlobOwnersTable {
  org_id: string;
  digest: string;
  created_at: number;
}
export interface ArtifactsTable {
  id: string;
  org_id: string;
  project: string;
  name: string;
  version: number;
  kind: string;
  digest: string;
  size: number;
  media_type: string | null;
  metadata: string;
  producer_job_id: string | null;
  parents: string;
  created_at: number;
}
export interface UsageTable {
  id: string;
  org_id: string;
  job_id: string;
  attempt: number;
  project: string;
  type: string;
  ts: number;
  wall_s: number;
  cpu_s: number;
  gpu_s: number;
  gpu_detail: string;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
}

/** The database as Kysely sees it. */
export interface Database extends WorkflowDatabase, ServingDatabase {
  orgs: OrgsTable;
  projects: ProjectsTable;
  api_keys: ApiKeysTable;
  workers: WorkersTable;
  jobs: JobsTable;
  attempts: AttemptsTable;
  job_logs: JobLogsTable;
  job_metrics: JobMetricsTable;
  job_events: JobEventsTable;
  blobs: BlobsTable;
  blob_owners: BlobOwnersTable;
  artifacts: ArtifactsTable;
  usage_records: UsageTable;
}

export interface WorkflowRunsTable {
  id: string;
  org_id: string;
  name: string;
  status: string;
  spec: string;
  inputs: string;
  outputs: string;
  resume_from: string | null;
  no_cache: number;
  /** 1 once a step failed under fail-fast: nothing new starts. */
  failing: number;
  error: string | null;
  created_at: number;
  finished_at: number | null;
}
export interface WorkflowStepsTable {
  run_id: string;
  step: string;
  /** Matrix instance index (0 for a plain step). */
  idx: number;
  org_id: string;
  status: string;
  job_id: string | null;
  cache_key: string | null;
  cache_hit: number;
  reused: number;
  skipped: number;
  matrix_values: string | null;
  outputs: string;
  error: string | null;
  created_at: number;
  finished_at: number | null;
}
export interface StepCacheTable {
  org_id: string;
  cache_key: string;
  job_id: string;
  outputs: string;
  created_at: number;
}

/** Tables of the workflow engine. */
export interface WorkflowDatabase {
  workflow_runs: WorkflowRunsTable;
  workflow_steps: WorkflowStepsTable;
  step_cache: StepCacheTable;
}

export interface DeploymentsTable {
  id: string;
  org_id: string;
  project: string;
  name: string;
  job_id: string;
  submission: string;
  worker_id: string | null;
  url: string | null;
  backend: string | null;
  status: string;
  restarts: number;
  error: string | null;
  created_at: number;
  updated_at: number;
  stopped_at: number | null;
}

export interface GatewayRoutesTable {
  org_id: string;
  name: string;
  targets: string;
  sticky: number;
  created_at: number;
  updated_at: number;
}

export interface GatewayRequestsTable {
  id: string;
  org_id: string;
  key_id: string | null;
  route: string;
  variant: string | null;
  upstream: string | null;
  endpoint: string;
  user_id: string | null;
  status: number;
  error_code: string | null;
  stream: number;
  latency_ms: number;
  upstream_ms: number | null;
  tokens_in: number;
  tokens_out: number;
  ts: number;
}

/** Tables of deployments and the gateway. */
export interface ServingDatabase {
  deployments: DeploymentsTable;
  gateway_routes: GatewayRoutesTable;
  gateway_requests: GatewayRequestsTable;
}
