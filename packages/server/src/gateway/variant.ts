import { createHash } from "node:crypto";
import type { Variant } from "./target-resolver.js";

/** A point in [0, 1) fixed by (route, user): the same user lands on the same variant, with no stored state. */
export function stickyPoint(route: string, user: string): number {
  const h = createHash("sha256").update(route).update("\u0000").update(user).digest();
  return h.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * Picks a variant by weight: at the sticky point of (route, user) when the route is sticky and a
 * user id was given, else at random.
 *
 * @example
 * pickVariant([{ name: "a", weight: 70, … }, { name: "b", weight: 30, … }], 100, true, "chat", "user-42")
 */
export function pickVariant(variants: readonly Variant[], totalWeight: number, sticky: boolean, route: string, user: string | undefined): Variant {
  if (variants.length === 1) return variants[0]!;
  const u = sticky && user !== undefined ? stickyPoint(route, user) : Math.random();
  let x = u * totalWeight;
  for (const v of variants) {
    x -= v.weight;
    if (x < 0) return v;
  }
  return variants[variants.length - 1]!;
}
