/**
 * The `${{ … }}` expression language of workflow files: references (`inputs.x`,
 * `steps.a.outputs.<name>`, `steps.a.status`, `matrix.k`), literals, comparison, `!`, `&&`,
 * `||`, parentheses, and the status functions `success()`, `failure()`, `always()`.
 */

/** A reference an expression makes, for validation. */
export type Reference =
  | { kind: "input"; name: string }
  | { kind: "step"; step: string; field: "outputs" | "status" | "outcome"; output?: string }
  | { kind: "matrix"; name: string };

type Token =
  | { t: "ref"; path: string[] }
  | { t: "str"; v: string }
  | { t: "num"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "null" }
  | { t: "op"; v: "==" | "!=" | "&&" | "||" | "!" | "(" | ")" | "<" | "<=" | ">" | ">=" }
  | { t: "call"; name: string };

/** An expression that does not parse or refers to something unknown. */
export class ExpressionError extends Error {
  override readonly name = "ExpressionError";
}

const EXPR = /\$\{\{([\s\S]*?)\}\}/g;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (["==", "!=", "&&", "||", "<=", ">="].includes(two)) {
      out.push({ t: "op", v: two as "==" });
      i += 2;
      continue;
    }
    if ("!()<>".includes(c)) {
      out.push({ t: "op", v: c as "!" });
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let s = "";
      while (j < src.length && src[j] !== c) {
        // GitHub Actions style: '' inside single quotes is a literal quote.
        if (src[j] === c && src[j + 1] === c) {
          s += c;
          j += 2;
          continue;
        }
        s += src[j];
        j++;
      }
      if (j >= src.length) throw new ExpressionError(`unterminated string in ${JSON.stringify(src)}`);
      out.push({ t: "str", v: s });
      i = j + 1;
      continue;
    }
    const num = /^-?\d+(\.\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ t: "num", v: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i));
    if (word) {
      const w = word[0];
      i += w.length;
      if (src.slice(i).trimStart().startsWith("(") && ["success", "failure", "always", "cancelled", "canceled"].includes(w)) {
        const close = src.indexOf(")", i);
        if (close < 0) throw new ExpressionError(`missing ) after ${w}( in ${JSON.stringify(src)}`);
        out.push({ t: "call", name: w });
        i = close + 1;
        continue;
      }
      if (w === "true" || w === "false") {
        out.push({ t: "bool", v: w === "true" });
        continue;
      }
      if (w === "null") {
        out.push({ t: "null" });
        continue;
      }
      const path = [w];
      for (;;) {
        if (src[i] === ".") {
          const seg = /^\.([A-Za-z0-9_\-]+)/.exec(src.slice(i));
          if (!seg) throw new ExpressionError(`bad property access in ${JSON.stringify(src)}`);
          path.push(seg[1]!);
          i += seg[0].length;
        } else if (src[i] === "[") {
          const m = /^\[\s*(['"])(.*?)\1\s*\]|^\[\s*(\d+)\s*\]/.exec(src.slice(i));
          if (!m) throw new ExpressionError(`bad index in ${JSON.stringify(src)}: use ['name'] or [0]`);
          path.push(m[2] ?? m[3]!);
          i += m[0].length;
        } else break;
      }
      out.push({ t: "ref", path });
      continue;
    }
    throw new ExpressionError(`unexpected ${JSON.stringify(c)} in ${JSON.stringify(src)}`);
  }
  return out;
}

/** Parsed expression node. */
export type Node =
  | { k: "lit"; v: unknown }
  | { k: "ref"; path: string[] }
  | { k: "call"; name: string }
  | { k: "not"; e: Node }
  | { k: "bin"; op: string; l: Node; r: Node };

/** Parses one expression body (what is inside `${{ }}`). */
export function parseExpression(src: string): Node {
  const toks = tokenize(src);
  let pos = 0;
  const peek = () => toks[pos];
  const isOp = (v: string) => {
    const t = peek();
    return t !== undefined && t.t === "op" && t.v === v;
  };
  const primary = (): Node => {
    const t = toks[pos++];
    if (t === undefined) throw new ExpressionError(`incomplete expression ${JSON.stringify(src)}`);
    switch (t.t) {
      case "ref":
        return { k: "ref", path: t.path };
      case "str":
      case "num":
      case "bool":
        return { k: "lit", v: t.v };
      case "null":
        return { k: "lit", v: null };
      case "call":
        return { k: "call", name: t.name };
      case "op":
        if (t.v === "!") return { k: "not", e: primary() };
        if (t.v === "(") {
          const e = or();
          if (!isOp(")")) throw new ExpressionError(`missing ) in ${JSON.stringify(src)}`);
          pos++;
          return e;
        }
        throw new ExpressionError(`unexpected ${t.v} in ${JSON.stringify(src)}`);
    }
  };
  const cmp = (): Node => {
    let l = primary();
    for (const op of ["==", "!=", "<=", ">=", "<", ">"]) {
      if (isOp(op)) {
        pos++;
        l = { k: "bin", op, l, r: primary() };
        break;
      }
    }
    return l;
  };
  const and = (): Node => {
    let l = cmp();
    while (isOp("&&")) {
      pos++;
      l = { k: "bin", op: "&&", l, r: cmp() };
    }
    return l;
  };
  const or = (): Node => {
    let l = and();
    while (isOp("||")) {
      pos++;
      l = { k: "bin", op: "||", l, r: and() };
    }
    return l;
  };
  const e = or();
  if (pos !== toks.length) throw new ExpressionError(`unexpected trailing input in ${JSON.stringify(src)}`);
  return e;
}

/** Turns a path into a {@link Reference}, or throws naming what is wrong. */
export function referenceOf(path: string[]): Reference {
  const [root, ...rest] = path;
  if (root === "inputs") {
    if (rest.length !== 1) throw new ExpressionError(`inputs.<name> expected, got ${path.join(".")}`);
    return { kind: "input", name: rest[0]! };
  }
  if (root === "matrix") {
    if (rest.length !== 1) throw new ExpressionError(`matrix.<name> expected, got ${path.join(".")}`);
    return { kind: "matrix", name: rest[0]! };
  }
  if (root === "steps") {
    const [step, field, ...out] = rest;
    if (step === undefined || (field !== "outputs" && field !== "status" && field !== "outcome")) {
      throw new ExpressionError(`steps.<step>.outputs.<name> or steps.<step>.status expected, got ${path.join(".")}`);
    }
    // Output names may contain dots (`corpus.jsonl`): the rest of the path is the name.
    return field === "outputs" ? { kind: "step", step, field, ...(out.length > 0 ? { output: out.join(".") } : {}) } : { kind: "step", step, field };
  }
  throw new ExpressionError(`unknown reference ${path.join(".")}: expressions may use inputs.*, steps.*, matrix.*`);
}

/** Every reference in a string's `${{ }}` expressions. */
export function referencesIn(text: string): Reference[] {
  const refs: Reference[] = [];
  const walk = (n: Node): void => {
    if (n.k === "ref") refs.push(referenceOf(n.path));
    else if (n.k === "not") walk(n.e);
    else if (n.k === "bin") {
      walk(n.l);
      walk(n.r);
    }
  };
  for (const m of text.matchAll(EXPR)) walk(parseExpression(m[1]!));
  return refs;
}

/** Values expressions read. */
export interface ExprContext {
  inputs: Record<string, unknown>;
  /** Per step: its status and outputs (a matrix step's outputs are lists, in matrix order). */
  steps: Record<string, { status: string; outputs: Record<string, unknown> }>;
  matrix?: Record<string, unknown>;
  /** For success()/failure(): the statuses of the step's `needs`. */
  needs?: string[];
}

function resolveRef(path: string[], ctx: ExprContext): unknown {
  const ref = referenceOf(path);
  switch (ref.kind) {
    case "input":
      if (!(ref.name in ctx.inputs)) throw new ExpressionError(`input ${ref.name} has no value`);
      return ctx.inputs[ref.name];
    case "matrix":
      if (!ctx.matrix || !(ref.name in ctx.matrix)) throw new ExpressionError(`matrix.${ref.name} used outside a matrix step that defines it`);
      return ctx.matrix[ref.name];
    case "step": {
      const s = ctx.steps[ref.step];
      if (!s) throw new ExpressionError(`step ${ref.step} has not run`);
      if (ref.field === "status" || ref.field === "outcome") return s.status;
      if (ref.output === undefined) return s.outputs;
      if (!(ref.output in s.outputs)) throw new ExpressionError(`step ${ref.step} has no output ${JSON.stringify(ref.output)} (it has: ${Object.keys(s.outputs).join(", ") || "none"})`);
      return s.outputs[ref.output];
    }
  }
}

/** Evaluates a parsed expression. */
export function evaluate(n: Node, ctx: ExprContext): unknown {
  switch (n.k) {
    case "lit":
      return n.v;
    case "ref":
      return resolveRef(n.path, ctx);
    case "call": {
      const statuses = (ctx.needs ?? []).map((s) => ctx.steps[s]?.status);
      if (n.name === "always") return true;
      if (n.name === "success") return statuses.every((s) => s === "succeeded");
      if (n.name === "failure") return statuses.some((s) => s === "failed");
      return statuses.some((s) => s === "canceled");
    }
    case "not":
      return !truthy(evaluate(n.e, ctx));
    case "bin": {
      if (n.op === "&&") return truthy(evaluate(n.l, ctx)) && truthy(evaluate(n.r, ctx));
      if (n.op === "||") return truthy(evaluate(n.l, ctx)) || truthy(evaluate(n.r, ctx));
      const l = evaluate(n.l, ctx);
      const r = evaluate(n.r, ctx);
      switch (n.op) {
        case "==":
          return looseEq(l, r);
        case "!=":
          return !looseEq(l, r);
        case "<":
          return Number(l) < Number(r);
        case "<=":
          return Number(l) <= Number(r);
        case ">":
          return Number(l) > Number(r);
        default:
          return Number(l) >= Number(r);
      }
    }
  }
}

function looseEq(a: unknown, b: unknown): boolean {
  if (typeof a === "string" && typeof b === "string") return a.toLowerCase() === b.toLowerCase();
  if (typeof a === "number" || typeof b === "number") return Number(a) === Number(b);
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Truthiness as in GitHub Actions: false, 0, '', null are false. */
export function truthy(v: unknown): boolean {
  return !(v === false || v === 0 || v === "" || v === null || v === undefined);
}

/**
 * Substitutes expressions in a value, recursively. A string that is exactly one `${{ }}`
 * becomes the expression's value (a list, a number, an output digest); otherwise values are
 * interpolated as text. An output reference resolves to the output's digest.
 */
export function substitute(value: unknown, ctx: ExprContext): unknown {
  if (typeof value === "string") {
    const whole = /^\s*\$\{\{([\s\S]*?)\}\}\s*$/.exec(value);
    if (whole && !whole[1]!.includes("}}")) return digestOf(evaluate(parseExpression(whole[1]!), ctx));
    return value.replace(EXPR, (_, body: string) => {
      const v = digestOf(evaluate(parseExpression(body), ctx));
      return typeof v === "string" ? v : JSON.stringify(v);
    });
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, ctx));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [substitute(k, ctx) as string, substitute(v, ctx)]));
  }
  return value;
}

/** Job outputs are `{digest, size, media_type}`: in expressions they stand for their digest. */
function digestOf(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(digestOf);
  if (v !== null && typeof v === "object" && typeof (v as { digest?: unknown }).digest === "string") return (v as { digest: string }).digest;
  return v;
}

/** Whether a value contains any `${{ }}`. */
export function hasExpression(value: unknown): boolean {
  return JSON.stringify(value ?? null).includes("${{");
}

/** Every expression-bearing string in a value, with its path. */
export function expressionStrings(value: unknown, path: (string | number)[] = []): { path: (string | number)[]; text: string }[] {
  if (typeof value === "string") return value.includes("${{") ? [{ path, text: value }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => expressionStrings(v, [...path, i]));
  if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => [...(k.includes("${{") ? [{ path, text: k }] : []), ...expressionStrings(v, [...path, k])]);
  return [];
}
