import { readRecords } from "../io/record-reader.js";
import { pyLen, pySplitCount } from "../text/py-str.js";

/** Summary of a dataset file. */
export interface DatasetStats {
  records: number;
  /** Records whose text field is missing or not a string. */
  no_text: number;
  bad_records: number;
  bytes: number;
  chars: { total: number; min: number; max: number; mean: number; p50: number; p90: number; p99: number };
  words: { total: number; mean: number };
  fields: Record<string, number>;
}

/** Stream a file and summarise it: counts, text sizes (quantiles from a bounded reservoir), field presence. */
export async function datasetStats(input: string, textField = "text"): Promise<DatasetStats> {
  const sample: number[] = [];
  let seen = 0;
  const s: DatasetStats = { records: 0, no_text: 0, bad_records: 0, bytes: 0, chars: { total: 0, min: Infinity, max: 0, mean: 0, p50: 0, p90: 0, p99: 0 }, words: { total: 0, mean: 0 }, fields: {} };
  let rng = 0x9e3779b9;
  for await (const item of readRecords(input)) {
    if (!item.ok) {
      s.bad_records++;
      continue;
    }
    s.records++;
    for (const k of Object.keys(item.value.record)) s.fields[k] = (s.fields[k] ?? 0) + 1;
    const t = item.value.record[textField];
    if (typeof t !== "string") {
      s.no_text++;
      continue;
    }
    const c = pyLen(t);
    s.bytes += Buffer.byteLength(t);
    s.chars.total += c;
    s.chars.min = Math.min(s.chars.min, c);
    s.chars.max = Math.max(s.chars.max, c);
    s.words.total += pySplitCount(t);
    // Reservoir sample (deterministic xorshift) keeps quantiles in bounded memory.
    seen++;
    if (sample.length < 100_000) sample.push(c);
    else {
      rng ^= rng << 13;
      rng ^= rng >>> 17;
      rng ^= rng << 5;
      const j = (rng >>> 0) % seen;
      if (j < sample.length) sample[j] = c;
    }
  }
  const n = s.records - s.no_text;
  if (n === 0) s.chars.min = 0;
  s.chars.mean = n ? s.chars.total / n : 0;
  s.words.mean = n ? s.words.total / n : 0;
  sample.sort((a, b) => a - b);
  const q = (p: number): number => (sample.length ? sample[Math.min(sample.length - 1, Math.floor(p * sample.length))]! : 0);
  s.chars.p50 = q(0.5);
  s.chars.p90 = q(0.9);
  s.chars.p99 = q(0.99);
  return s;
}
