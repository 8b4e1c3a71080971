import type { FailureKind, RetryPolicy } from "./job.js";

/** What happens to a job after an attempt ends badly. */
export type FailureOutcome =
  | { action: "requeue"; spendsFailureBudget: boolean; delayMs: number }
  | { action: "fail" }
  | { action: "cancel" };

/**
 * Decides a job's next state after a failed attempt: the three retry budgets.
 *
 * - `error`: spends the failure budget; retried with exponential backoff and full jitter
 *   until `max_attempts` failures.
 * - `preempted` (including a lost worker): re-queued at once, never spends the budget.
 * - `canceled`: terminal.  `guardrail`: terminal (outputs kept).
 *
 * No-capacity is not a failure: such jobs simply stay queued.
 *
 * @param failuresSoFar application failures before this one
 * @param random injectable for tests
 */
export function decideFailure(
  kind: FailureKind,
  retryable: boolean,
  failuresSoFar: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): FailureOutcome {
  switch (kind) {
    case "preempted":
      return { action: "requeue", spendsFailureBudget: false, delayMs: 0 };
    case "canceled":
      return { action: "cancel" };
    case "guardrail":
      return { action: "fail" };
    case "error": {
      const failures = failuresSoFar + 1;
      if (!retryable || failures >= policy.max_attempts) return { action: "fail" };
      return { action: "requeue", spendsFailureBudget: true, delayMs: backoffMs(failures, policy, random) };
    }
  }
}

/** Full-jitter exponential backoff (AWS architecture blog): uniform in [0, min(cap, base·2^(n-1))]. */
export function backoffMs(failures: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.max_backoff_s, policy.backoff_s * 2 ** Math.max(0, failures - 1));
  return Math.round(random() * ceiling * 1000);
}
