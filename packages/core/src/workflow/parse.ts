import YAML, { LineCounter, isNode } from "yaml";
import { z } from "zod";
import { JobSpecs } from "../job.js";
import { ExpressionError, expressionStrings, referencesIn, type Reference } from "./expressions.js";
import { WorkflowSpec, type WorkflowStep } from "./schema.js";

/** One problem in a workflow file, located by path and (for YAML text) line and column. */
export interface WorkflowIssue {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

/** A workflow file that is not valid: every issue, located. */
export class WorkflowError extends Error {
  override readonly name = "WorkflowError";
  constructor(readonly issues: WorkflowIssue[]) {
    super(
      issues
        .map((i) => `${i.line !== undefined ? `line ${i.line}${i.column !== undefined ? `:${i.column}` : ""}: ` : ""}${i.path === "" ? "" : `${i.path}: `}${i.message}`)
        .join("\n"),
    );
  }
}

/** A validated workflow plus its step order. */
export interface ParsedWorkflow {
  spec: WorkflowSpec;
  /** Steps in a topological order (dependencies first). */
  order: string[];
  /** Each step's dependencies: explicit `needs` plus steps its expressions reference. */
  deps: Record<string, string[]>;
}

/** Normalises `needs` to a list. */
export function needsOf(step: WorkflowStep): string[] {
  return step.needs === undefined ? [] : Array.isArray(step.needs) ? step.needs : [step.needs];
}

/**
 * Parses and validates a workflow (YAML/JSON text or an object): schema, unknown steps in
 * `needs`, cycles, references to unknown steps, inputs or matrix keys, and, where a step's spec
 * has no expressions, the job spec itself. Errors carry the path and, for text, the line.
 *
 * @example
 * const { spec, order } = parseWorkflow(readFileSync("pipelines/distill.yaml", "utf8"));
 */
export function parseWorkflow(source: string | Record<string, unknown>): ParsedWorkflow {
  let raw: unknown = source;
  let locate: (path: (string | number)[]) => { line?: number; column?: number } = () => ({});
  if (typeof source === "string") {
    const lc = new LineCounter();
    const doc = YAML.parseDocument(source, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      throw new WorkflowError(
        doc.errors.map((e) => {
          const p = e.linePos?.[0];
          return { path: "", message: e.message.split("\n")[0]!, ...(p ? { line: p.line, column: p.col } : {}) };
        }),
      );
    }
    raw = doc.toJS();
    locate = (path) => {
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true);
        if (isNode(node) && node.range) {
          const p = lc.linePos(node.range[0]);
          return { line: p.line, column: p.col };
        }
      }
      return {};
    };
  }
  const issue = (path: (string | number)[], message: string): WorkflowIssue => ({ path: path.join("."), message, ...locate(path) });
  const r = WorkflowSpec.safeParse(raw);
  if (!r.success) throw new WorkflowError(r.error.issues.map((i) => issue(i.path as (string | number)[], i.message)));
  const spec = r.data;
  const issues: WorkflowIssue[] = [];
  const names = Object.keys(spec.steps);
  const deps: Record<string, string[]> = {};

  for (const [name, step] of Object.entries(spec.steps)) {
    const d = new Set<string>();
    for (const n of needsOf(step)) {
      if (!spec.steps[n]) issues.push(issue(["steps", name, "needs"], `unknown step ${JSON.stringify(n)} (steps: ${names.join(", ")})`));
      else if (n === name) issues.push(issue(["steps", name, "needs"], "a step cannot need itself"));
      else d.add(n);
    }
    const matrixKeys = new Set(Object.keys(step.matrix ?? {}));
    const check = (refs: Reference[], path: (string | number)[], allowMatrix: boolean) => {
      for (const ref of refs) {
        if (ref.kind === "input" && !(ref.name in spec.inputs)) issues.push(issue(path, `unknown input ${JSON.stringify(ref.name)} (declare it under inputs)`));
        if (ref.kind === "matrix" && (!allowMatrix || !matrixKeys.has(ref.name))) issues.push(issue(path, `unknown matrix key ${JSON.stringify(ref.name)}`));
        if (ref.kind === "step") {
          if (!spec.steps[ref.step]) issues.push(issue(path, `unknown step ${JSON.stringify(ref.step)} in expression`));
          else if (ref.step === name) issues.push(issue(path, "a step cannot reference its own outputs"));
          else d.add(ref.step);
        }
      }
    };
    const scan = (value: unknown, base: (string | number)[], allowMatrix: boolean) => {
      for (const { path, text } of expressionStrings(value)) {
        try {
          check(referencesIn(text), [...base, ...path], allowMatrix);
        } catch (err) {
          if (err instanceof ExpressionError) issues.push(issue([...base, ...path], err.message));
          else throw err;
        }
      }
    };
    scan(step.with, ["steps", name, "with"], true);
    if (typeof step.if === "string") scan(step.if.includes("${{") ? step.if : `\${{ ${step.if} }}`, ["steps", name, "if"], true);
    for (const [k, v] of Object.entries(step.matrix ?? {})) if (typeof v === "string") scan(v, ["steps", name, "matrix", k], false);
    deps[name] = [...d];
    // A spec without expressions can be checked now; one with expressions is checked when resolved.
    if (expressionStrings(step.with).length === 0) {
      const s = JobSpecs[step.type].safeParse(step.with);
      if (!s.success) for (const i of s.error.issues) issues.push(issue(["steps", name, "with", ...(i.path as (string | number)[])], i.message));
    }
  }
  for (const [k, v] of Object.entries(spec.outputs)) {
    try {
      for (const ref of referencesIn(v)) {
        if (ref.kind === "step" && !spec.steps[ref.step]) issues.push(issue(["outputs", k], `unknown step ${JSON.stringify(ref.step)}`));
        if (ref.kind === "input" && !(ref.name in spec.inputs)) issues.push(issue(["outputs", k], `unknown input ${JSON.stringify(ref.name)}`));
        if (ref.kind === "matrix") issues.push(issue(["outputs", k], "matrix values are not available in workflow outputs"));
      }
    } catch (err) {
      if (err instanceof ExpressionError) issues.push(issue(["outputs", k], err.message));
      else throw err;
    }
  }
  if (issues.length > 0) throw new WorkflowError(issues);

  // Kahn's algorithm; whatever is left is on a cycle.
  const indeg = new Map(names.map((n) => [n, deps[n]!.length]));
  const order: string[] = [];
  const ready = names.filter((n) => indeg.get(n) === 0);
  while (ready.length > 0) {
    const n = ready.shift()!;
    order.push(n);
    for (const m of names) {
      if (deps[m]!.includes(n)) {
        indeg.set(m, indeg.get(m)! - 1);
        if (indeg.get(m) === 0) ready.push(m);
      }
    }
  }
  if (order.length < names.length) {
    const cyclic = names.filter((n) => !order.includes(n));
    const cycle = findCycle(cyclic, deps);
    throw new WorkflowError([issue(["steps", cycle[0]!, "needs"], `dependency cycle: ${cycle.join(" → ")}`)]);
  }
  return { spec, order, deps };
}

function findCycle(nodes: string[], deps: Record<string, string[]>): string[] {
  const onPath: string[] = [];
  const seen = new Set<string>();
  const dfs = (n: string): string[] | undefined => {
    const at = onPath.indexOf(n);
    if (at >= 0) return [...onPath.slice(at), n];
    if (seen.has(n)) return undefined;
    seen.add(n);
    onPath.push(n);
    for (const d of deps[n] ?? []) {
      const c = dfs(d);
      if (c) return c;
    }
    onPath.pop();
    return undefined;
  };
  for (const n of nodes) {
    const c = dfs(n);
    if (c) return c.reverse();
  }
  return nodes;
}

/**
 * Resolves the workflow's inputs: given values are checked against their declared types,
 * defaults fill the rest, and a missing required input is an error naming it.
 */
export function resolveInputs(spec: WorkflowSpec, given: Record<string, unknown>): Record<string, unknown> {
  const issues: WorkflowIssue[] = [];
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(given)) if (!(k in spec.inputs)) issues.push({ path: `inputs.${k}`, message: `unknown input (the workflow declares: ${Object.keys(spec.inputs).join(", ") || "none"})` });
  for (const [name, decl] of Object.entries(spec.inputs)) {
    let v = given[name] ?? decl.default;
    if (v === undefined) {
      issues.push({ path: `inputs.${name}`, message: `missing input ${name}${decl.description ? ` (${decl.description})` : ""}: pass --input ${name}=…` });
      continue;
    }
    const bad = (want: string) => issues.push({ path: `inputs.${name}`, message: `expected ${want}, got ${JSON.stringify(v)}` });
    switch (decl.type) {
      case "number":
        if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) v = Number(v);
        if (typeof v !== "number") bad("a number");
        break;
      case "boolean":
        if (v === "true" || v === "false") v = v === "true";
        if (typeof v !== "boolean") bad("true or false");
        break;
      case "digest":
        if (typeof v !== "string" || !/^sha256:[0-9a-f]{64}$/.test(v)) bad("a blob digest sha256:<hex>");
        break;
      case "artifact":
        if (typeof v !== "string" || !/^(art_[0-9A-Za-z]+|sha256:[0-9a-f]{64})$/.test(v)) bad("an artifact id art_… or a digest");
        break;
      case "list":
        if (typeof v === "string") {
          try {
            v = JSON.parse(v);
          } catch {
            v = (v as string).split(",").map((s: string) => s.trim());
          }
        }
        if (!Array.isArray(v)) bad("a list");
        break;
      case "object":
        if (typeof v === "string") {
          try {
            v = JSON.parse(v);
          } catch {
            /* reported below */
          }
        }
        if (v === null || typeof v !== "object" || Array.isArray(v)) bad("an object");
        break;
      case "string":
        if (typeof v === "number" || typeof v === "boolean") v = String(v);
        if (typeof v !== "string") bad("a string");
        break;
    }
    out[name] = v;
  }
  if (issues.length > 0) throw new WorkflowError(issues);
  return out;
}

/** The cartesian product of a resolved matrix, in a stable order. */
export function expandMatrix(matrix: Record<string, unknown[]>): Record<string, unknown>[] {
  let combos: Record<string, unknown>[] = [{}];
  for (const [k, values] of Object.entries(matrix)) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [k]: v })));
  return combos;
}

void z;
