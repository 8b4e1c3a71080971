import type { RubricDimension } from "@nexa/core";
import type { CallOptions, OpenAIClient } from "../client/openai-client.js";
import { chatJson } from "../client/structured-output.js";
import type { ChatRequest } from "../client/types.js";
import { StructuredOutputError, describeError } from "../errors.js";

/** What a judge is shown. */
export interface JudgeItem {
  /** The prompt or task the output answers (omit for free-standing records). */
  input?: string;
  /** The text to judge. */
  output: string;
  /** A reference answer, when there is one. */
  reference?: string;
}

/** One dimension's score. */
export interface DimensionScore {
  score: number;
  reason: string;
}

/** A parsed judgment. */
export interface JudgeVerdictOk {
  status: "ok";
  scores: Record<string, DimensionScore>;
  /** Weighted mean of the dimension scores (1–10). */
  weighted: number;
  /** Weighted score reaches the threshold and every dimension reaches its own threshold. */
  passed: boolean;
  /** Dimensions under their own threshold. */
  failed_dimensions: string[];
  /** Replies asked for (1 = parsed first time). */
  tries: number;
}

/** A judgment that never parsed: recorded explicitly, never as a score of 0. */
export interface JudgeVerdictParseFailure {
  status: "parse_failure";
  error: string;
  /** The last reply. */
  raw: string;
  tries: number;
  passed: false;
}

/** The verdict of a {@link RubricJudge}. */
export type JudgeVerdict = JudgeVerdictOk | JudgeVerdictParseFailure;

/** Options of a {@link RubricJudge}. */
export interface RubricJudgeOptions {
  client: OpenAIClient;
  rubric: readonly RubricDimension[];
  /** Weighted score (1–10) needed to pass. @default 7 */
  threshold?: number;
  instructions?: string;
  /** Re-asks when a reply does not parse. @default 2 */
  maxParseRetries?: number;
  /** Sampling for the judge; temperature defaults to 0. */
  sampling?: Partial<Pick<ChatRequest, "temperature" | "top_p" | "max_tokens" | "seed">>;
  /** Send `response_format: json_schema`. @default true */
  structuredOutput?: boolean;
}

/**
 * An LLM judge that scores a text 1–10 on named rubric dimensions, with a reason for each,
 * combines them by weight and compares against thresholds. Replies are requested as JSON against
 * a schema; a reply that does not parse or validate is re-asked, and after the retries the verdict
 * is an explicit `parse_failure`.
 *
 * @example
 * const judge = new RubricJudge({ client, rubric: [{ name: "helpfulness", description: "Answers the question", weight: 1 }] });
 * const v = await judge.judge({ input: "2+2?", output: "4" });
 * if (v.status === "ok" && v.passed) keep();
 */
export class RubricJudge {
  readonly rubric: readonly RubricDimension[];
  readonly threshold: number;
  private readonly client: OpenAIClient;
  private readonly options: RubricJudgeOptions;
  readonly schema: Record<string, unknown>;

  constructor(options: RubricJudgeOptions) {
    if (options.rubric.length === 0) throw new RangeError("a rubric needs at least one dimension");
    this.client = options.client;
    this.rubric = options.rubric;
    this.threshold = options.threshold ?? 7;
    this.options = options;
    const dims: Record<string, unknown> = {};
    for (const d of this.rubric) {
      dims[d.name] = {
        type: "object",
        properties: { score: { type: "integer", minimum: 1, maximum: 10 }, reason: { type: "string" } },
        required: ["score", "reason"],
        additionalProperties: false,
      };
    }
    this.schema = {
      type: "object",
      properties: { scores: { type: "object", properties: dims, required: this.rubric.map((d) => d.name), additionalProperties: false } },
      required: ["scores"],
      additionalProperties: false,
    };
  }

  /** The judge prompt for one item. */
  messages(item: JudgeItem): ChatRequest["messages"] {
    const dims = this.rubric.map((d) => `- ${d.name}: ${d.description}`).join("\n");
    const system =
      "You are a strict, fair evaluator. Score the response on each rubric dimension from 1 (very poor) to 10 " +
      "(excellent), with a one-sentence reason. Reply with JSON only: " +
      `{"scores": {"<dimension>": {"score": <1-10>, "reason": "<why>"}, ...}}.` +
      (this.options.instructions ? `\n\n${this.options.instructions}` : "");
    let user = `Rubric:\n${dims}\n\n`;
    if (item.input !== undefined) user += `Task:\n${item.input}\n\n`;
    if (item.reference !== undefined) user += `Reference answer:\n${item.reference}\n\n`;
    user += `Response to evaluate:\n${item.output}`;
    return [
      { role: "system", content: system },
      { role: "user", content: user },
    ];
  }

  /** Scores one item. Request failures (endpoint down after retries) throw; unparseable replies do not. */
  async judge(item: JudgeItem, call: CallOptions = {}): Promise<JudgeVerdict> {
    const request: ChatRequest = { temperature: 0, ...(this.options.sampling ?? {}), messages: this.messages(item) };
    const maxRepairs = this.options.maxParseRetries ?? 2;
    try {
      const r = await chatJson<{ scores: Record<string, DimensionScore> }>(this.client, request, {
        schema: this.schema,
        name: "rubric_scores",
        maxRepairs,
        ...(this.options.structuredOutput === false ? { responseFormat: false } : {}),
        ...call,
      });
      return this.verdict(r.value.scores, r.tries);
    } catch (e) {
      if (e instanceof StructuredOutputError) {
        return { status: "parse_failure", error: describeError(e), raw: e.reply, tries: maxRepairs + 1, passed: false };
      }
      throw e;
    }
  }

  private verdict(raw: Record<string, DimensionScore>, tries: number): JudgeVerdictOk {
    const scores: Record<string, DimensionScore> = {};
    let num = 0;
    let den = 0;
    const failed: string[] = [];
    for (const d of this.rubric) {
      const s = raw[d.name]!;
      scores[d.name] = { score: s.score, reason: s.reason };
      const w = d.weight ?? 1;
      num += w * s.score;
      den += w;
      if (d.threshold !== undefined && s.score < d.threshold) failed.push(d.name);
    }
    const weighted = num / den;
    return { status: "ok", scores, weighted, passed: weighted >= this.threshold && failed.length === 0, failed_dimensions: failed, tries };
  }
}
