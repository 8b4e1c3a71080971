import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OpenAIClient, PairwiseJudge, RubricJudge, StandInServer, TemplateError, buildChatMessages, cartesianProduct, renderTemplate, type StandInCall } from "../src/index.js";

let server: StandInServer;
let client: OpenAIClient;
beforeAll(async () => {
  server = await StandInServer.start();
  client = new OpenAIClient({ baseUrl: server.url, model: "judge" });
});
afterAll(async () => {
  await client.close();
  await server.close();
});
beforeEach(() => server.reset());

const userText = (c: StandInCall) => (c.kind === "chat" ? c.lastUser : "");

describe("RubricJudge", () => {
  const rubric = [
    { name: "accuracy", description: "Correct", weight: 3, threshold: 6 },
    { name: "tone", description: "Polite", weight: 1 },
  ];

  it("weights dimension scores and applies both the overall and per-dimension thresholds", async () => {
    server.setReply((c) => {
      const acc = userText(c).includes("wrong") ? 5 : 8;
      return JSON.stringify({ scores: { accuracy: { score: acc, reason: "r" }, tone: { score: 10, reason: "kind" } } });
    });
    const judge = new RubricJudge({ client, rubric, threshold: 6 });
    const good = await judge.judge({ input: "q", output: "right answer" });
    expect(good).toMatchObject({ status: "ok", weighted: (3 * 8 + 10) / 4, passed: true, failed_dimensions: [] });
    // Weighted 6.25 clears the overall threshold, but accuracy 5 is under its own 6.
    const bad = await judge.judge({ input: "q", output: "wrong answer" });
    expect(bad).toMatchObject({ status: "ok", weighted: (3 * 5 + 10) / 4, passed: false, failed_dimensions: ["accuracy"] });
    expect(good.status === "ok" && good.scores.tone).toEqual({ score: 10, reason: "kind" });
  });

  it("re-asks on an unparseable or out-of-range reply, then records a parse failure — never a 0", async () => {
    let n = 0;
    server.setReply(() => {
      n++;
      return n === 1 ? '{"scores": {"accuracy": {"score": 11, "reason": "x"}, "tone": {"score": 3, "reason": "y"}}}' : "Score: great";
    });
    const judge = new RubricJudge({ client, rubric, maxParseRetries: 2 });
    const v = await judge.judge({ output: "text" });
    expect(v).toMatchObject({ status: "parse_failure", passed: false, tries: 3, raw: "Score: great" });
    expect(n).toBe(3);
    expect("weighted" in v).toBe(false);
  });

  it("sends the rubric, task, reference and output to the judge with a JSON schema", async () => {
    let seen: StandInCall | undefined;
    server.setReply((c) => {
      seen = c;
      return JSON.stringify({ scores: { accuracy: { score: 7, reason: "ok" }, tone: { score: 7, reason: "ok" } } });
    });
    await new RubricJudge({ client, rubric }).judge({ input: "What is 2+2?", output: "4", reference: "four" });
    const text = userText(seen!);
    for (const s of ["accuracy: Correct", "What is 2+2?", "four", "Response to evaluate:\n4"]) expect(text).toContain(s);
    expect((seen!.body.response_format as { type: string }).type).toBe("json_schema");
    expect(seen!.body.temperature).toBe(0);
  });
});

describe("PairwiseJudge", () => {
  it("reports a winner only when both presentation orders agree", async () => {
    // A fair judge: always prefers the answer containing "detailed".
    server.setReply((c) => {
      const t = userText(c);
      const first = t.slice(t.indexOf("Response 1:"), t.indexOf("Response 2:"));
      return JSON.stringify({ winner: first.includes("detailed") ? "1" : "2", reason: "more detail" });
    });
    const j = new PairwiseJudge({ client });
    expect(await j.compare("Explain DNS", "short", "detailed answer")).toMatchObject({ status: "ok", winner: "B", consistent: true });
    // A position-biased judge always says "1": the orders disagree, so it is a tie.
    server.setReply(() => JSON.stringify({ winner: "1", reason: "first is best" }));
    expect(await j.compare("Explain DNS", "short", "detailed answer")).toMatchObject({ status: "ok", winner: "tie", consistent: false });
    server.setReply(() => "no idea");
    expect(await new PairwiseJudge({ client, maxParseRetries: 0 }).compare("x", "a", "b")).toMatchObject({ status: "parse_failure" });
  });
});

describe("prompt templates", () => {
  it("fills dotted variables and filters, and names every missing variable", () => {
    expect(renderTemplate("{{ a }} {{b.c|upper}} {{ n }} {{ o | json }}", { a: "x", b: { c: "y" }, n: 3, o: { k: [1] } })).toBe('x Y 3 {"k":[1]}');
    const e = (() => {
      try {
        renderTemplate("{{ a }} {{ missing }} {{ b.nope }}", { a: 1, b: {} });
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(TemplateError);
    expect((e as TemplateError).missing).toEqual(["missing", "b.nope"]);
  });

  it("builds few-shot chat messages and cartesian products", () => {
    expect(buildChatMessages({ system: "S", fewShot: [{ input: "1+1", output: "2" }], user: "2+2" })).toEqual([
      { role: "system", content: "S" },
      { role: "user", content: "1+1" },
      { role: "assistant", content: "2" },
      { role: "user", content: "2+2" },
    ]);
    expect(cartesianProduct({ t: ["a", "b"], s: ["x", "y", "z"] })).toHaveLength(6);
  });
});
