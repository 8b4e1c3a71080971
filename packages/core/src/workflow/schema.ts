import { z } from "zod";
import { JobType, Limits } from "../job.js";
import { Requirements } from "../requirements.js";

/** A workflow input: `name → {type, default?, description?}`. */
export const WorkflowInput = z.strictObject({
  type: z.enum(["string", "number", "boolean", "digest", "artifact", "list", "object"]).default("string"),
  default: z.unknown().optional(),
  description: z.string().optional(),
  required: z.boolean().optional(),
});
export type WorkflowInput = z.infer<typeof WorkflowInput>;

/** Per-step cache: `true` (default), `false`, or `{version}` to invalidate by hand. */
export const StepCache = z.union([z.boolean(), z.strictObject({ version: z.union([z.string(), z.number()]) })]);
export type StepCache = z.infer<typeof StepCache>;

const StepName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, "step names are letters, digits, '_' or '-', starting with a letter or '_'");

/** One step: a job of any type, with its dependencies and policies. */
export const WorkflowStep = z.strictObject({
  type: JobType,
  name: z.string().optional(),
  /** The job spec; may contain `${{ … }}` expressions. */
  with: z.record(z.string(), z.unknown()).default({}),
  needs: z.union([StepName, z.array(StepName)]).optional(),
  if: z.union([z.string(), z.boolean()]).optional(),
  /** Fan-out: keys map to lists (or an expression giving a list, or a step's outputs); the cartesian product runs. */
  matrix: z.record(z.string(), z.union([z.array(z.unknown()).min(1), z.string()])).optional(),
  retry: z.strictObject({ max_attempts: z.number().int().min(1).max(100), backoff_s: z.number().nonnegative().default(5) }).optional(),
  requirements: Requirements.optional(),
  limits: Limits.optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  cache: StepCache.default(true),
});
export type WorkflowStep = z.infer<typeof WorkflowStep>;

/** A workflow file (YAML or JSON). */
export const WorkflowSpec = z.strictObject({
  name: z.string().min(1).max(200),
  description: z.string().optional(),
  inputs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/), WorkflowInput).default({}),
  steps: z.record(StepName, WorkflowStep).refine((s) => Object.keys(s).length > 0, "a workflow needs at least one step"),
  outputs: z.record(z.string(), z.string()).default({}),
  /** `fail-fast` cancels the rest when a step fails; `continue` runs every branch that can still run. */
  on_failure: z.enum(["fail-fast", "continue"]).default("fail-fast"),
  project: z.string().optional(),
});
export type WorkflowSpec = z.infer<typeof WorkflowSpec>;

/** Step and run statuses reuse the job statuses. */
export const WorkflowStatus = z.enum(["queued", "running", "succeeded", "failed", "canceled"]);
export type WorkflowStatus = z.infer<typeof WorkflowStatus>;

/** One matrix instance of a step. */
export const WorkflowStepInstance = z.object({
  index: z.number().int(),
  values: z.record(z.string(), z.unknown()),
  status: WorkflowStatus,
  job_id: z.string().nullable(),
  cache_hit: z.boolean(),
  outputs: z.record(z.string(), z.unknown()),
});
export type WorkflowStepInstance = z.infer<typeof WorkflowStepInstance>;

/** A step's record in a run. */
export const WorkflowStepRecord = z.object({
  status: WorkflowStatus,
  job_id: z.string().nullable(),
  cache_hit: z.boolean(),
  /** Output name → `{digest, size, media_type}`; for a matrix step, name → list in matrix order. */
  outputs: z.record(z.string(), z.unknown()),
  /** The step's `if` was false, or an upstream failure kept it from running. */
  skipped: z.boolean().optional(),
  /** Reused from the run this one resumed. */
  reused: z.boolean().optional(),
  error: z.string().nullable().optional(),
  needs: z.array(z.string()),
  matrix: z.array(WorkflowStepInstance).optional(),
  started_at: z.string().nullable().optional(),
  finished_at: z.string().nullable().optional(),
});
export type WorkflowStepRecord = z.infer<typeof WorkflowStepRecord>;

/** A workflow run as the API returns it. */
export const WorkflowRun = z.object({
  id: z.string(),
  name: z.string(),
  status: WorkflowStatus,
  inputs: z.record(z.string(), z.unknown()),
  outputs: z.record(z.string(), z.unknown()),
  steps: z.record(z.string(), WorkflowStepRecord),
  resume_from: z.string().nullable(),
  no_cache: z.boolean(),
  error: z.string().nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
});
export type WorkflowRun = z.infer<typeof WorkflowRun>;

/** `POST /v1/workflows` body. */
export const CreateWorkflowRunRequest = z.strictObject({
  /** The workflow file as an object, or its YAML / JSON text. */
  workflow: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
  inputs: z.record(z.string(), z.unknown()).default({}),
  resume_from: z.string().optional(),
  no_cache: z.boolean().default(false),
});
export type CreateWorkflowRunRequest = z.infer<typeof CreateWorkflowRunRequest>;

/** `GET /v1/workflows` query. */
export const ListWorkflowRunsQuery = z.object({
  status: WorkflowStatus.optional(),
  name: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().optional(),
});
export type ListWorkflowRunsQuery = z.infer<typeof ListWorkflowRunsQuery>;
