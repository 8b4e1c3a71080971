import { numpySum } from "./numeric.js";

/** A class label: a number or a string. */
export type Label = string | number;

/** Precision, recall and F1 of one averaging. */
export interface PrfScores {
  precision: number;
  recall: number;
  f1: number;
}

/** Classification metrics as scikit-learn computes them with `zero_division=0`. */
export interface ClassificationReport {
  /** Sorted union of the labels seen in `y_true` and `y_pred`. */
  labels: Label[];
  accuracy: number;
  /** `confusion_matrix[i][j]`: true label i predicted as j. */
  confusion_matrix: number[][];
  macro: PrfScores;
  micro: PrfScores;
  /** Averaged with weights = support in `y_true`. */
  weighted: PrfScores;
  per_class: { precision: number[]; recall: number[]; f1: number[]; support: number[] };
  /** Only for labels exactly {0, 1}: scores of class 1 (`average='binary'`). */
  binary_pos_label_1?: PrfScores;
}

function compareLabels(a: Label, b: Label): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function divide(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

/**
 * Accuracy, per-class and macro/micro/weighted precision, recall and F1, and the confusion
 * matrix — equal to scikit-learn's `accuracy_score`, `precision_recall_fscore_support(…, zero_division=0)`
 * and `confusion_matrix(labels=sorted union)`.
 *
 * @example
 * classificationReport([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1]).macro.f1 // → 0.26666666666666666
 */
export function classificationReport(yTrue: readonly Label[], yPred: readonly Label[]): ClassificationReport {
  if (yTrue.length !== yPred.length) throw new RangeError(`y_true has ${yTrue.length} labels, y_pred ${yPred.length}`);
  if (yTrue.length === 0) throw new RangeError("no samples");
  const labels = [...new Set<Label>([...yTrue, ...yPred])].sort(compareLabels);
  const index = new Map<Label, number>(labels.map((l, i) => [l, i]));
  const k = labels.length;
  const cm = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) {
    cm[index.get(yTrue[i]!)!]![index.get(yPred[i]!)!]! += 1;
    if (yTrue[i] === yPred[i]) correct++;
  }
  const tp = labels.map((_, i) => cm[i]![i]!);
  const trueSum = labels.map((_, i) => cm[i]!.reduce((a, b) => a + b, 0));
  const predSum = labels.map((_, j) => cm.reduce((a, row) => a + row[j]!, 0));
  const precision = tp.map((t, i) => divide(t, predSum[i]!));
  const recall = tp.map((t, i) => divide(t, trueSum[i]!));
  // sklearn: F = (1 + β²)·tp / ((1 + β²)·tp + β²·fn + fp) = 2·tp / (true + pred) for β = 1.
  const f1 = tp.map((t, i) => divide(2 * t, trueSum[i]! + predSum[i]!));

  const mean = (xs: number[]) => numpySum(xs) / xs.length;
  const totalSupport = trueSum.reduce((a, b) => a + b, 0);
  const weightedMean = (xs: number[]) => divide(numpySum(xs.map((x, i) => x * trueSum[i]!)), totalSupport);
  const tpAll = tp.reduce((a, b) => a + b, 0);
  const predAll = predSum.reduce((a, b) => a + b, 0);
  const trueAll = trueSum.reduce((a, b) => a + b, 0);

  const report: ClassificationReport = {
    labels,
    accuracy: correct / yTrue.length,
    confusion_matrix: cm,
    macro: { precision: mean(precision), recall: mean(recall), f1: mean(f1) },
    micro: { precision: divide(tpAll, predAll), recall: divide(tpAll, trueAll), f1: divide(2 * tpAll, trueAll + predAll) },
    weighted: { precision: weightedMean(precision), recall: weightedMean(recall), f1: weightedMean(f1) },
    per_class: { precision, recall, f1, support: trueSum },
  };
  if (k === 2 && labels[0] === 0 && labels[1] === 1) {
    report.binary_pos_label_1 = { precision: precision[1]!, recall: recall[1]!, f1: f1[1]! };
  }
  return report;
}
