import { type Counter, countItems, counterTotal } from "./counter.js";

/** Precision, recall and F-measure of one ROUGE variant. */
export interface RougeComponent {
  precision: number;
  recall: number;
  fmeasure: number;
}

/** ROUGE-1, ROUGE-2 and ROUGE-L of one prediction against one target. */
export interface RougeScores {
  rouge1: RougeComponent;
  rouge2: RougeComponent;
  rougeL: RougeComponent;
}

/**
 * rouge-score's default tokenizer (no stemming): lower-case, every run of characters outside
 * `[a-z0-9]` becomes a space — so non-ASCII letters are dropped ("café" → "caf").
 *
 * @example
 * rougeTokenize("State-of-the-art isn't cheap") // → ["state","of","the","art","isn","t","cheap"]
 */
export function rougeTokenize(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, " ")
    .split(" ")
    .filter((t) => t !== "");
}

function fmeasure(p: number, r: number): number {
  return p + r > 0 ? (2 * p * r) / (p + r) : 0.0;
}

function ngrams(tokens: readonly string[], n: number): Counter {
  const grams: string[] = [];
  for (let i = 0; i + n <= tokens.length; i++) grams.push(tokens.slice(i, i + n).join(" "));
  return countItems(grams);
}

/** ROUGE-N over token lists: clipped n-gram overlap. */
export function rougeN(targetTokens: readonly string[], predictionTokens: readonly string[], n: number): RougeComponent & { overlap: number } {
  const tg = ngrams(targetTokens, n);
  const pg = ngrams(predictionTokens, n);
  let overlap = 0;
  for (const [g, c] of tg) overlap += Math.min(c, pg.get(g) ?? 0);
  const precision = overlap / Math.max(counterTotal(pg), 1);
  const recall = overlap / Math.max(counterTotal(tg), 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall), overlap };
}

/** Length of the longest common subsequence of two token lists. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** ROUGE-L (sentence-level LCS) over token lists; all zero if either side is empty. */
export function rougeL(targetTokens: readonly string[], predictionTokens: readonly string[]): RougeComponent & { lcs: number } {
  if (targetTokens.length === 0 || predictionTokens.length === 0) return { precision: 0, recall: 0, fmeasure: 0, lcs: 0 };
  const lcs = lcsLength(targetTokens, predictionTokens);
  const precision = lcs / predictionTokens.length;
  const recall = lcs / targetTokens.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall), lcs };
}

/**
 * rouge-score's `RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer=False).score(target, prediction)`.
 *
 * @example
 * rouge("police killed the gunman", "the gunman killed police").rougeL.fmeasure // → 0.5
 */
export function rouge(target: string, prediction: string): RougeScores {
  const t = rougeTokenize(target);
  const p = rougeTokenize(prediction);
  const strip = <T extends RougeComponent>(c: T): RougeComponent => ({ precision: c.precision, recall: c.recall, fmeasure: c.fmeasure });
  return { rouge1: strip(rougeN(t, p, 1)), rouge2: strip(rougeN(t, p, 2)), rougeL: strip(rougeL(t, p)) };
}
