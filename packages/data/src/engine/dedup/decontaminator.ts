import { simplifyText } from "../text/simplify-text.js";

/**
 * Drops training documents that share a long word n-gram (default 13, as in GPT-3's
 * decontamination) with an evaluation set, after datatrove's text normalisation.
 */
export class Decontaminator {
  private readonly grams = new Set<string>();

  constructor(readonly n = 13) {}

  /** Add an evaluation text (question, answer, passage). */
  addEvalText(text: string): void {
    const w = simplifyText(text).split(" ").filter(Boolean);
    if (w.length < this.n) {
      if (w.length > 0) this.grams.add(w.join(" "));
      return;
    }
    for (let i = 0; i + this.n <= w.length; i++) this.grams.add(w.slice(i, i + this.n).join(" "));
  }

  /** Number of distinct eval n-grams held. */
  get size(): number {
    return this.grams.size;
  }

  /** The first shared n-gram, or `undefined` when the document is clean. */
  findOverlap(text: string): string | undefined {
    if (this.grams.size === 0) return undefined;
    const w = simplifyText(text).split(" ").filter(Boolean);
    if (w.length < this.n) {
      const all = w.join(" ");
      return this.grams.has(all) ? all : undefined;
    }
    for (let i = 0; i + this.n <= w.length; i++) {
      const g = w.slice(i, i + this.n).join(" ");
      if (this.grams.has(g)) return g;
    }
    return undefined;
  }
}
