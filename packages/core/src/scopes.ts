import { z } from "zod";

/** API key scopes. `admin` implies every other scope within its org. */
export const Scope = z.enum(["admin", "jobs:write", "jobs:read", "worker"]);
export type Scope = z.infer<typeof Scope>;

/** Whether a key holding `held` may act where `needed` is required. */
export function scopeAllows(held: readonly Scope[], needed: Scope): boolean {
  if (held.includes("admin")) return true;
  if (held.includes(needed)) return true;
  // Writing jobs implies reading them; a worker reads the jobs it runs.
  if (needed === "jobs:read" && (held.includes("jobs:write") || held.includes("worker"))) return true;
  return false;
}
