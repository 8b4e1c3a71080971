import type { FastifyInstance } from "fastify";
import { JobSubmission, PreflightReport } from "@nexa/core";
import { preflightDeps, preflightSubmission } from "../../preflight.js";
import type { AppContext } from "../context.js";
import { route } from "../route.js";

/** `POST /v1/preflight`: checks a job submission before it queues. */
export function preflightRoutes(app: FastifyInstance, ctx: AppContext): void {
  route(app, ctx, {
    method: "POST",
    url: "/v1/preflight",
    tag: "jobs",
    summary:
      "Check a job submission (the POST /v1/jobs body) before it queues: for train, the dataset exists and parses, the tokenizer resolves, the model config gives a parameter count, the memory estimate fits a registered worker, and duration and cost; for other types, inputs exist and a worker can run it. Queues nothing.",
    scope: "jobs:read",
    body: JobSubmission,
    response: PreflightReport,
    handler: async ({ body, principal }) => preflightSubmission(preflightDeps(ctx), principal.orgId, body as JobSubmission),
  });
}
