import { describe, expect, test } from "vitest";
import { evaluate, parseExpression, substitute } from "./expressions.js";
import { expandMatrix, parseWorkflow, resolveInputs, WorkflowError } from "./parse.js";

const ok = `
name: pipe
inputs:
  n: {type: number, default: 3}
steps:
  make:
    type: command
    with: {argv: [echo, "\${{ inputs.n }}"]}
  count:
    type: command
    with:
      argv: [wc]
      inputs: {corpus.jsonl: "\${{ steps.make.outputs.corpus.jsonl }}"}
  report:
    type: command
    needs: [count]
    with: {argv: [cat]}
`;

function issuesOf(text: string) {
  try {
    parseWorkflow(text);
  } catch (err) {
    if (err instanceof WorkflowError) return err.issues;
    throw err;
  }
  throw new Error("expected a WorkflowError");
}

describe("parseWorkflow", () => {
  test("orders steps, with references as implicit dependencies", () => {
    const w = parseWorkflow(ok);
    expect(w.order).toEqual(["make", "count", "report"]);
    expect(w.deps.count).toEqual(["make"]);
  });

  test("a cycle is named with its path and line", () => {
    const issues = issuesOf(`name: c
steps:
  a: {type: command, needs: b, with: {argv: [x]}}
  b: {type: command, needs: [a], with: {argv: [y]}}
`);
    expect(issues[0]!.message).toMatch(/dependency cycle: (a → b → a|b → a → b)/);
    expect(issues[0]!.line).toBeGreaterThanOrEqual(3);
  });

  test("unknown step in needs, with its line", () => {
    const [i] = issuesOf(`name: u
steps:
  a:
    type: command
    needs: [nope]
    with: {argv: [x]}
`);
    expect(i).toMatchObject({ path: "steps.a.needs", line: 5 });
    expect(i!.message).toMatch(/unknown step "nope"/);
  });

  test("unknown reference, unknown input, wrong type, bad spec", () => {
    const refs = issuesOf(`name: r
steps:
  a:
    type: command
    with: {argv: ["\${{ steps.ghost.outputs.x }}", "\${{ inputs.missing }}"]}
`);
    expect(refs.map((i) => i.message).join("\n")).toMatch(/unknown step "ghost"/);
    expect(refs.map((i) => i.message).join("\n")).toMatch(/unknown input "missing"/);
    expect(refs[0]!.line).toBe(5);
    const type = issuesOf(`name: t
steps:
  a: {type: kommand, with: {}}
`);
    expect(type[0]).toMatchObject({ path: "steps.a.type", line: 3 });
    const spec = issuesOf(`name: s
steps:
  a:
    type: command
    with: {argv: []}
`);
    expect(spec[0]).toMatchObject({ path: "steps.a.with.argv" });
    expect(spec[0]!.line).toBe(5);
  });

  test("missing and mistyped inputs", () => {
    const w = parseWorkflow(`name: i
inputs:
  model: {type: string, description: the teacher}
  n: {type: number}
steps:
  a: {type: command, with: {argv: ["\${{ inputs.model }}"]}}
`);
    expect(() => resolveInputs(w.spec, { n: "x" })).toThrow(/missing input model[\s\S]*expected a number/);
    expect(resolveInputs(w.spec, { model: "m", n: "4" })).toEqual({ model: "m", n: 4 });
  });

  test("YAML syntax errors carry their line", () => {
    const [i] = issuesOf("name: x\nsteps:\n  a: {type: command\n");
    expect(i!.line).toBeGreaterThan(0);
  });
});

describe("expressions", () => {
  const ctx = {
    inputs: { n: 3, name: "tiny" },
    steps: { a: { status: "succeeded", outputs: { "data.jsonl": { digest: "sha256:" + "a".repeat(64), size: 1, media_type: "x" } } }, b: { status: "failed", outputs: {} } },
    needs: ["a", "b"],
  };
  test("evaluate comparisons, logic and status functions", () => {
    expect(evaluate(parseExpression("steps.a.status == 'succeeded' && inputs.n >= 3"), ctx)).toBe(true);
    expect(evaluate(parseExpression("!(steps.b.status == 'succeeded') || false"), ctx)).toBe(true);
    expect(evaluate(parseExpression("success()"), ctx)).toBe(false);
    expect(evaluate(parseExpression("failure()"), ctx)).toBe(true);
  });
  test("a whole-string expression keeps its value; outputs resolve to digests", () => {
    expect(substitute("${{ inputs.n }}", ctx)).toBe(3);
    expect(substitute("model-${{ inputs.name }}-${{ inputs.n }}", ctx)).toBe("model-tiny-3");
    expect(substitute({ in: "${{ steps.a.outputs['data.jsonl'] }}" }, ctx)).toEqual({ in: "sha256:" + "a".repeat(64) });
    expect(substitute("${{ steps.a.outputs.data.jsonl }}", ctx)).toBe("sha256:" + "a".repeat(64));
  });
  test("matrix expands to the cartesian product in order", () => {
    expect(expandMatrix({ a: [1, 2], b: ["x", "y"] })).toEqual([
      { a: 1, b: "x" },
      { a: 1, b: "y" },
      { a: 2, b: "x" },
      { a: 2, b: "y" },
    ]);
  });
});
