import type { CallOptions, OpenAIClient } from "../client/openai-client.js";
import { chatJson } from "../client/structured-output.js";
import { StructuredOutputError, describeError } from "../errors.js";

/** Outcome of a pairwise comparison. */
export type PairwiseWinner = "A" | "B" | "tie";

/** The verdict of a {@link PairwiseJudge}. */
export type PairwiseVerdict =
  | {
      status: "ok";
      winner: PairwiseWinner;
      /** Whether both presentation orders agreed (a disagreement is reported as a tie). */
      consistent: boolean;
      reasons: [string, string];
    }
  | { status: "parse_failure"; error: string; raw: string };

const SCHEMA = {
  type: "object",
  properties: { winner: { type: "string", enum: ["1", "2", "tie"] }, reason: { type: "string" } },
  required: ["winner", "reason"],
  additionalProperties: false,
};

/**
 * Pairwise LLM comparison of two answers to one prompt. Each pair is judged in both orders to
 * cancel position bias; if the orders disagree the result is a tie.
 *
 * @example
 * const v = await new PairwiseJudge({ client }).compare("Explain DNS", answerA, answerB);
 * if (v.status === "ok") console.log(v.winner);
 */
export class PairwiseJudge {
  private readonly client: OpenAIClient;
  private readonly criteria: string;
  private readonly maxParseRetries: number;

  constructor(options: { client: OpenAIClient; criteria?: string; maxParseRetries?: number }) {
    this.client = options.client;
    this.criteria = options.criteria ?? "helpfulness, correctness and clarity";
    this.maxParseRetries = options.maxParseRetries ?? 2;
  }

  private async once(prompt: string, first: string, second: string, call: CallOptions, salt: string) {
    const messages = [
      {
        role: "system" as const,
        content: `You compare two responses to the same task on ${this.criteria}. Reply with JSON only: {"winner": "1" | "2" | "tie", "reason": "<why>"}.`,
      },
      { role: "user" as const, content: `Task:\n${prompt}\n\nResponse 1:\n${first}\n\nResponse 2:\n${second}` },
    ];
    return chatJson<{ winner: "1" | "2" | "tie"; reason: string }>(
      this.client,
      { messages, temperature: 0 },
      { schema: SCHEMA, name: "pairwise", maxRepairs: this.maxParseRetries, ...call, cacheSalt: `${call.cacheSalt ?? ""}${salt}` },
    );
  }

  /** Compares answer A with answer B. */
  async compare(prompt: string, a: string, b: string, call: CallOptions = {}): Promise<PairwiseVerdict> {
    try {
      const [ab, ba] = await Promise.all([this.once(prompt, a, b, call, "#ab"), this.once(prompt, b, a, call, "#ba")]);
      const w1: PairwiseWinner = ab.value.winner === "1" ? "A" : ab.value.winner === "2" ? "B" : "tie";
      const w2: PairwiseWinner = ba.value.winner === "1" ? "B" : ba.value.winner === "2" ? "A" : "tie";
      const consistent = w1 === w2;
      return { status: "ok", winner: consistent ? w1 : "tie", consistent, reasons: [ab.value.reason, ba.value.reason] };
    } catch (e) {
      if (e instanceof StructuredOutputError) return { status: "parse_failure", error: describeError(e), raw: e.reply };
      throw e;
    }
  }
}
