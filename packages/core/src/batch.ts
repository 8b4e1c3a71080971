import { z } from "zod";
import { ErrorCode } from "./errors.js";
import { CompleteRequest, JobStatus } from "./job.js";

/** One lease to finish successfully in a {@link BatchCompleteRequest}: a `CompleteRequest` plus its lease id. */
export const BatchCompleteItem = CompleteRequest.extend({ lease_id: z.string().min(1).max(200) });
export type BatchCompleteItem = z.infer<typeof BatchCompleteItem>;

/**
 * `POST /v1/leases/complete` body: finish many attempts in one request and one transaction.
 * Each lease succeeds or fails on its own; a stale lease does not hold up the others.
 *
 * @example
 * { leases: [{ lease_id: "lease_…", outputs: {} }, { lease_id: "lease_…", usage: { cpu_s: 2 } }] }
 */
export const BatchCompleteRequest = z.strictObject({ leases: z.array(BatchCompleteItem).min(1).max(1000) });
export type BatchCompleteRequest = z.infer<typeof BatchCompleteRequest>;

/** The outcome for one lease of a batch: the job's new status, or the error a single complete would have got. */
export const BatchCompleteResult = z.object({
  lease_id: z.string(),
  job_id: z.string().optional(),
  status: JobStatus.optional(),
  error: z.object({ code: ErrorCode, message: z.string() }).optional(),
});
export type BatchCompleteResult = z.infer<typeof BatchCompleteResult>;

/** `POST /v1/leases/complete` answer, one result per lease in request order. */
export const BatchCompleteResponse = z.object({ items: z.array(BatchCompleteResult) });
export type BatchCompleteResponse = z.infer<typeof BatchCompleteResponse>;
