/** A multiset, like Python's `collections.Counter`, keyed by string. Insertion order kept. */
export type Counter = Map<string, number>;

/** Counts the items of a list. */
export function countItems(items: Iterable<string>): Counter {
  const c: Counter = new Map();
  for (const it of items) c.set(it, (c.get(it) ?? 0) + 1);
  return c;
}

/** Sum of the counts. */
export function counterTotal(c: Counter): number {
  let t = 0;
  for (const v of c.values()) t += v;
  return t;
}

/** Size of the multiset intersection (`sum((a & b).values())`). */
export function intersectionSize(a: Counter, b: Counter): number {
  let n = 0;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w !== undefined) n += Math.min(v, w);
  }
  return n;
}
