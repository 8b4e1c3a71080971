import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expandMatrix, expressionStrings, JobSpecs, parseWorkflow, referencesIn, resolveInputs, substitute, WorkflowError, type ExprContext } from "@nexa/core";
// Not on the server package's public surface; the engine applies it to every resolved spec.
import { expandListInputs } from "../../server/src/workflows/engine.js";
import { afterAll, describe, expect, test } from "vitest";
import { formatIssues, graphFromFile, initTemplate, layers, parseInputFlags, renderGraph, templateNames, templatesDir } from "../src/commands/workflows.js";

const tmp = mkdtempSync(join(tmpdir(), "nexa-cli-wf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const FAKE = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;

/**
 * Resolves every step of a workflow the way the engine does, with made-up digests for files and
 * upstream outputs, and validates each resolved spec against its job type's schema: a template
 * that parses but whose specs would be refused at run time fails here.
 */
function resolveAllSteps(text: string): Record<string, unknown> {
  const { spec, order } = parseWorkflow(text);
  let n = 1;
  const given: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(spec.inputs)) if (typeof d.default === "string" && d.default.startsWith("@")) given[k] = FAKE(n++);
  const inputs = resolveInputs(spec, given);
  const steps: ExprContext["steps"] = {};
  const resolved: Record<string, unknown> = {};
  for (const name of order) {
    const step = spec.steps[name]!;
    const ctx: ExprContext = { inputs, steps };
    let combos: Record<string, unknown>[] = [{}];
    if (step.matrix) {
      const m: Record<string, unknown[]> = {};
      for (const [k, v] of Object.entries(step.matrix)) m[k] = (typeof v === "string" ? substitute(v, ctx) : v) as unknown[];
      combos = expandMatrix(m);
    }
    for (const values of combos) {
      const r = expandListInputs(substitute(step.with, { ...ctx, matrix: values }));
      const parsed = JobSpecs[step.type].safeParse(r);
      if (!parsed.success) throw new Error(`step ${name}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      resolved[name] = parsed.data;
    }
    // Every output a later step or the workflow's outputs name, as a digest (a list for a matrix).
    const outputs: Record<string, unknown> = {};
    for (const { text: t } of expressionStrings({ s: spec.steps, o: spec.outputs })) {
      for (const ref of referencesIn(t)) {
        if (ref.kind === "step" && ref.step === name && ref.output !== undefined) outputs[ref.output] = step.matrix ? combos.map(() => ({ digest: FAKE(n++) })) : { digest: FAKE(n++) };
      }
    }
    steps[name] = { status: "succeeded", outputs };
  }
  substitute(spec.outputs, { inputs, steps });
  return resolved;
}

describe("templates", () => {
  test("there are distill, finetune and eval templates", () => {
    expect(templateNames()).toEqual(expect.arrayContaining(["distill", "eval", "finetune"]));
  });

  for (const name of ["distill", "finetune", "eval"]) {
    test(`${name}: parses, and every step resolves to a valid spec of its job type`, () => {
      const text = readFileSync(join(templatesDir(), name, "workflow.yaml"), "utf8");
      const resolved = resolveAllSteps(text);
      expect(Object.keys(resolved).length).toBeGreaterThan(0);
      // Every "@file" default names a file shipped beside the template.
      for (const m of text.matchAll(/default: "@([^"]+)"/g)) expect(() => readFileSync(join(templatesDir(), name, m[1]!))).not.toThrow();
    });
  }

  test("distill runs the whole pipeline, in order", () => {
    const { order, spec } = parseWorkflow(readFileSync(join(templatesDir(), "distill", "workflow.yaml"), "utf8"));
    expect(order).toEqual(["generate", "audit", "distill", "train", "deploy", "evaluate"]);
    expect(new Set(Object.values(spec.steps).map((s) => s.type))).toEqual(new Set(["generate", "audit", "distill", "train", "deploy", "evaluate"]));
  });

  test("eval fans the reports of its matrix into the compare step as a folder", () => {
    const resolved = resolveAllSteps(readFileSync(join(templatesDir(), "eval", "workflow.yaml"), "utf8")) as { compare: { inputs: Record<string, string> } };
    expect(Object.keys(resolved.compare.inputs).sort()).toEqual(["compare.mjs", "reports/0", "reports/1"]);
  });

  test("a template whose spec is wrong is caught by the resolution check", () => {
    const bad = "name: b\ninputs: {u: {default: 'not a url'}}\nsteps:\n  e:\n    type: evaluate\n    with: {endpoint: {base_url: '${{ inputs.u }}', model: m}, dataset: 'sha256:00'}\n";
    expect(() => resolveAllSteps(bad)).toThrow(/step e: .*base_url/);
  });

  test("init writes the files, refuses to overwrite without --force, and overwrites with it", async () => {
    const dir = join(tmp, "init-distill");
    const written = await initTemplate("distill", dir);
    expect(written.map((f) => f.slice(dir.length + 1)).sort()).toEqual(["eval.jsonl", "workflow.yaml"]);
    writeFileSync(join(dir, "workflow.yaml"), "mine");
    await expect(initTemplate("distill", dir)).rejects.toThrow(/workflow\.yaml.*already exist.*--force/);
    expect(readFileSync(join(dir, "workflow.yaml"), "utf8")).toBe("mine");
    await initTemplate("distill", dir, true);
    expect(readFileSync(join(dir, "workflow.yaml"), "utf8")).toContain("name: distill");
    await expect(initTemplate("nope", dir)).rejects.toThrow(/unknown template "nope": choose one of .*distill/);
  });
});

describe("inputs and errors", () => {
  test("--input NAME=VALUE pairs; a value may contain '='", () => {
    expect(parseInputFlags(["n=3", "q=a=b", "empty="])).toEqual({ n: "3", q: "a=b", empty: "" });
    expect(() => parseInputFlags(["novalue"])).toThrow(/--input: expected NAME=VALUE, got "novalue"/);
  });

  test("issues print as FILE:LINE:COL path: message", () => {
    const text = "name: bad\nsteps:\n  a:\n    type: command\n    needs: [ghost]\n    with: {argv: [x]}\n";
    let issues: WorkflowError["issues"] = [];
    try {
      parseWorkflow(text);
    } catch (err) {
      issues = (err as WorkflowError).issues;
    }
    expect(formatIssues("wf.yaml", issues)).toEqual(['wf.yaml:5:12 steps.a.needs: unknown step "ghost" (steps: a)']);
    expect(formatIssues("wf.yaml", [{ path: "inputs.x", message: "missing input x" }])).toEqual(["wf.yaml inputs.x: missing input x"]);
  });
});

describe("graph", () => {
  const file = `name: g
steps:
  a: {type: command, with: {argv: ["true"]}}
  b: {type: command, with: {argv: ["true"]}}
  shard: {type: command, needs: [a], matrix: {i: [0, 1, 2], j: [x, y]}, with: {argv: ["echo", "\${{ matrix.i }}"]}}
  join: {type: command, needs: [shard, b], with: {argv: ["true"]}}
`;

  test("layers by dependency depth", () => {
    expect(layers(graphFromFile(parseWorkflow(file))).map((l) => l.map((n) => n.name))).toEqual([["a", "b"], ["shard"], ["join"]]);
  });

  test("a static graph from a file: boxes with types, matrix sizes and needs", () => {
    const out = renderGraph(graphFromFile(parseWorkflow(file)), { columns: 120 }).join("\n");
    expect(out).toContain("◇ shard");
    expect(out).toContain("matrix ×6 over i, j");
    expect(out).toContain("← shard, b");
    // a and b share the first layer's row.
    expect(out.split("\n").find((l) => l.includes("◇ a"))).toContain("◇ b");
    expect(out).not.toMatch(/\x1b\[/);
  });

  test("a run's graph: status symbols, colours, cache hits and matrix counts", () => {
    const nodes = [
      { name: "a", needs: [], status: "succeeded" as const, cacheHit: true },
      { name: "shard", needs: ["a"], status: "running" as const, matrix: { total: 4, counts: { succeeded: 1, running: 2, queued: 1 }, cacheHits: 1 } },
      { name: "join", needs: ["shard"], status: "queued" as const },
      { name: "gone", needs: ["a"], status: "canceled" as const, skipped: true },
    ];
    const plain = renderGraph(nodes, { style: "lines" });
    expect(plain[0]).toMatch(/^ 0 ✓ a\s+succeeded ⚡cache hit$/);
    expect(plain.find((l) => l.includes("shard"))).toMatch(/● shard\s+running\s+1\/4 ✓ · 2 ● · 1 ○ · 1 cached\s+← a/);
    expect(plain.find((l) => l.includes("gone"))).toMatch(/↷ gone\s+skipped/);
    const coloured = renderGraph(nodes, { color: true }).join("\n");
    expect(coloured).toContain("\x1b[32m"); // green for succeeded
    expect(coloured).toContain("\x1b[36m"); // cyan for running
  });
});
