import type { GenerateDedup } from "@nexa/core";
import { MinHasher, MinHashIndex } from "@nexa/data";

/** What {@link findNearDuplicates} decided. */
export interface NearDuplicates {
  /** Index of each removed text → index of the kept text it duplicates. */
  removedBy: Map<number, number>;
  /** Band collisions whose estimated Jaccard stayed under the threshold (kept: not duplicates). */
  rejected: number;
}

/**
 * Near-duplicates among `texts` with the data engine's MinHash LSH: each text's signature
 * ({@link MinHasher}), band collisions clustered by {@link MinHashIndex} (datatrove's union by size; the
 * cluster's root is kept), and each removal confirmed when the share of equal signature values with the
 * kept text reaches `options.threshold`. Texts with no shingle (fewer than `n_grams` words) have no
 * signature and are removed only when their whitespace-normalised text equals an earlier one's.
 *
 * @example
 * const { removedBy } = await findNearDuplicates(outputs, GenerateDedup.parse({}));
 * const kept = outputs.filter((_, i) => !removedBy.has(i));
 */
export async function findNearDuplicates(texts: readonly string[], options: GenerateDedup): Promise<NearDuplicates> {
  const hasher = await MinHasher.create({
    n_grams: options.n_grams,
    num_buckets: options.num_buckets,
    hashes_per_bucket: options.hashes_per_bucket,
    seed: options.seed,
  });
  const index = new MinHashIndex(options.num_buckets, options.hashes_per_bucket);
  const signatures: (Uint32Array | null)[] = [];
  const removedBy = new Map<number, number>();
  const short = new Map<string, number>();
  texts.forEach((text, i) => {
    const sig = hasher.signature(text);
    signatures.push(sig);
    if (sig !== null) {
      index.add(i, sig);
      return;
    }
    const norm = text.trim().split(/\s+/).join(" ");
    const first = short.get(norm);
    if (first === undefined) short.set(norm, i);
    else removedBy.set(i, first);
  });
  let rejected = 0;
  for (const [removed, kept] of index.clusters().removedBy) {
    if (estimatedJaccard(signatures[removed]!, signatures[kept]!) >= options.threshold) removedBy.set(removed, kept);
    else rejected++;
  }
  return { removedBy, rejected };
}

/** Share of equal 64-bit values (interleaved [hi, lo] words) of two signatures of one hasher. */
export function estimatedJaccard(a: Uint32Array, b: Uint32Array): number {
  let equal = 0;
  for (let k = 0; k < a.length; k += 2) if (a[k] === b[k] && a[k + 1] === b[k + 1]) equal++;
  return equal / (a.length / 2);
}
