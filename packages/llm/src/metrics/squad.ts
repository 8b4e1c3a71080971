import { countItems, intersectionSize } from "./counter.js";
import { pyLower, pySplit } from "./python-text.js";

/** Python's `string.punctuation`: the 32 ASCII punctuation characters (nothing outside ASCII). */
const ASCII_PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

// Python's `\b` in a str pattern is Unicode-aware: a word character is a letter, a number or `_`
// (marks are not). A JS `\b` is ASCII-only and would cut the 'a' off "día".
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/**
 * SQuAD v1.1 answer normalisation (official `evaluate-v1.1.py`): lower-case, drop ASCII
 * punctuation, replace the articles a/an/the by a space, collapse whitespace.
 *
 * @example
 * squadNormalize("The Eiffel Tower!") // → "eiffel tower"
 */
export function squadNormalize(s: string): string {
  let t = pyLower(s);
  let out = "";
  for (const ch of t) if (!ASCII_PUNCTUATION.has(ch)) out += ch;
  t = out.replace(ARTICLES, " ");
  return pySplit(t).join(" ");
}

/**
 * SQuAD v1.1 token F1 between a prediction and one ground truth (0 when either side normalises to
 * nothing: v1.1 semantics, unlike v2.0).
 *
 * @example
 * squadF1("Denver Broncos won", "Denver Broncos") // → 0.8
 */
export function squadF1(prediction: string, groundTruth: string): number {
  const p = pySplit(squadNormalize(prediction));
  const g = pySplit(squadNormalize(groundTruth));
  const numSame = intersectionSize(countItems(p), countItems(g));
  if (numSame === 0) return 0;
  const precision = (1.0 * numSame) / p.length;
  const recall = (1.0 * numSame) / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/** SQuAD exact match (after {@link squadNormalize}) against one ground truth: 1 or 0. */
export function squadExactMatch(prediction: string, groundTruth: string): number {
  return squadNormalize(prediction) === squadNormalize(groundTruth) ? 1 : 0;
}

/**
 * The best score over several ground truths, as SQuAD's `metric_max_over_ground_truths`.
 *
 * @example
 * maxOverGroundTruths(squadF1, "Santa Clara", ["Levi's Stadium", "Santa Clara"]) // → 1
 */
export function maxOverGroundTruths(
  metric: (prediction: string, groundTruth: string) => number,
  prediction: string,
  groundTruths: readonly string[],
): number {
  if (groundTruths.length === 0) throw new RangeError("at least one ground truth is needed");
  let best = -Infinity;
  for (const g of groundTruths) best = Math.max(best, metric(prediction, g));
  return best;
}

/** A SQuAD v1.1 dataset (the `data` array of the JSON file). */
export type SquadDataset = readonly {
  paragraphs: readonly { qas: readonly { id: string; answers: readonly { text: string }[] }[] }[];
}[];

/**
 * The official SQuAD v1.1 `evaluate()`: EM and F1 in percent; unanswered questions score 0.
 *
 * @example
 * squadEvaluate(dataset, { q1: "Denver Broncos" }) // → { exact_match: …, f1: … }
 */
export function squadEvaluate(dataset: SquadDataset, predictions: Readonly<Record<string, string>>): { exact_match: number; f1: number } {
  let f1 = 0;
  let em = 0;
  let total = 0;
  for (const article of dataset) {
    for (const paragraph of article.paragraphs) {
      for (const qa of paragraph.qas) {
        total += 1;
        if (!Object.hasOwn(predictions, qa.id)) continue;
        const gts = qa.answers.map((a) => a.text);
        const pred = predictions[qa.id]!;
        em += maxOverGroundTruths(squadExactMatch, pred, gts);
        f1 += maxOverGroundTruths(squadF1, pred, gts);
      }
    }
  }
  return { exact_match: (100.0 * em) / total, f1: (100.0 * f1) / total };
}
