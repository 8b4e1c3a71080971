import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { dirname, extname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ForgeError, parseWorkflow, WorkflowError, WorkflowStatus, type ParsedWorkflow, type WorkflowIssue, type WorkflowRun, type WorkflowStepRecord } from "@nexa/core";
import type { ForgeClient } from "@nexa/sdk";
import type { Command } from "commander";
import pc from "picocolors";
import YAML from "yaml";
import { resolveClient, withClientOptions, type ClientFlags } from "../client-config.js";
import { ago, duration, elapsed, printFields, printJson, printTable, status } from "../output.js";

type Colors = ReturnType<typeof pc.createColors>;

// ── inputs ──────────────────────────────────────────────────────────────────────────────

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Parses repeated `--input NAME=VALUE` flags. The value is kept as text: the server converts it
 * to the input's declared type (number, boolean, list as JSON or commas, object as JSON).
 *
 * @example
 * parseInputFlags(["n=3", "topics=a,b"]) // { n: "3", topics: "a,b" }
 */
export function parseInputFlags(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new Error(`--input: expected NAME=VALUE, got ${JSON.stringify(item)} (e.g. --input n=3, or --input data=@prompts.jsonl to upload a file)`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

const MEDIA_TYPES: Record<string, string> = {
  ".mjs": "text/javascript",
  ".js": "text/javascript",
  ".py": "text/x-python",
  ".sh": "text/x-shellscript",
  ".json": "application/json",
  ".jsonl": "application/x-ndjson",
  ".yaml": "application/yaml",
  ".yml": "application/yaml",
  ".txt": "text/plain",
  ".csv": "text/csv",
  ".parquet": "application/vnd.apache.parquet",
};

/** The declared input defaults of a workflow text, read leniently (the server does the validating). */
function declaredDefaults(text: string): Record<string, unknown> {
  try {
    const doc = YAML.parse(text) as { inputs?: Record<string, { default?: unknown } | null> } | null;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(doc?.inputs ?? {})) if (v !== null && typeof v === "object" && "default" in v) out[k] = v.default;
    return out;
  } catch {
    return {};
  }
}

/**
 * Resolves the inputs `nexa run` sends. A value `@PATH` names a local file: it is uploaded to the
 * blob store and replaced by its digest, so any worker can read it (`--input` paths are relative
 * to the current folder; an input's `default: "@file"` is relative to the workflow file). Other
 * values pass through as given.
 *
 * @example
 * await prepareInputs(client, "examples/fanout/workflow.yaml", text, { shards: "4" });
 */
export async function prepareInputs(
  client: ForgeClient,
  file: string,
  text: string,
  given: Record<string, string>,
  cwd: string = process.cwd(),
): Promise<{ inputs: Record<string, unknown>; uploaded: { name: string; path: string; digest: string }[] }> {
  const inputs: Record<string, unknown> = { ...given };
  const uploaded: { name: string; path: string; digest: string }[] = [];
  const upload = async (name: string, path: string) => {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new Error(`input ${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (a value @PATH uploads that file; use @@ for a literal leading @)`);
    }
    const { digest } = await client.putBlob(new Uint8Array(bytes), { mediaType: MEDIA_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream" });
    uploaded.push({ name, path, digest });
    return digest;
  };
  for (const [name, value] of Object.entries(given)) {
    if (value.startsWith("@@")) inputs[name] = value.slice(1);
    else if (value.startsWith("@")) inputs[name] = await upload(name, resolve(cwd, value.slice(1)));
  }
  for (const [name, def] of Object.entries(declaredDefaults(text))) {
    if (name in given || typeof def !== "string" || !def.startsWith("@") || def.startsWith("@@")) continue;
    const p = def.slice(1);
    inputs[name] = await upload(name, isAbsolute(p) ? p : resolve(dirname(resolve(cwd, file)), p));
  }
  return { inputs, uploaded };
}

// ── errors ──────────────────────────────────────────────────────────────────────────────

/**
 * Formats workflow issues as `FILE:LINE:COL path: message` (`FILE path: message` when the issue
 * has no line, e.g. a missing input; the path is left out when the issue is about the whole file).
 */
export function formatIssues(file: string, issues: Partial<WorkflowIssue>[]): string[] {
  return issues.map((i) => {
    const at = i.line !== undefined ? `${file}:${i.line}${i.column !== undefined ? `:${i.column}` : ""}` : file;
    return `${at}${i.path ? ` ${i.path}` : ""}: ${i.message ?? "invalid"}`;
  });
}

/** The issues of a 422 from `POST /v1/workflows`, or `undefined` when it is another error. */
function issuesOf(err: unknown): Partial<WorkflowIssue>[] | undefined {
  if (err instanceof WorkflowError) return err.issues;
  if (err instanceof ForgeError && err.code === "invalid_request" && Array.isArray(err.details) && err.details.length > 0) {
    return (err.details as Partial<WorkflowIssue>[]).filter((d) => d !== null && typeof d === "object");
  }
  return undefined;
}

// ── graph model ─────────────────────────────────────────────────────────────────────────

/** One node of a drawn workflow graph. */
export interface GraphNode {
  name: string;
  type?: string;
  needs: string[];
  /** `null` for a static graph (a file, not a run). */
  status: WorkflowStatus | null;
  cacheHit?: boolean;
  reused?: boolean;
  skipped?: boolean;
  /** Matrix instance counts by status (a run), or the static size when known (a file). */
  matrix?: { total: number | null; counts?: Partial<Record<WorkflowStatus, number>>; cacheHits?: number; keys?: string[] };
  durationS?: number | null;
  error?: string | null;
  /** Static graphs: `off` for `cache: false`, `v<version>` for `cache: {version}`. */
  cache?: string;
}

/** The graph of a run: each step with its status, cache hit, matrix counts and needs. */
export function graphFromRun(run: WorkflowRun): GraphNode[] {
  return Object.entries(run.steps).map(([name, s]) => stepNode(name, s));
}

function stepNode(name: string, s: WorkflowStepRecord): GraphNode {
  const node: GraphNode = { name, needs: s.needs, status: s.status, cacheHit: s.cache_hit, error: s.error ?? null };
  if (s.reused) node.reused = true;
  if (s.skipped) node.skipped = true;
  if (s.started_at) node.durationS = s.cache_hit || s.reused ? 0 : elapsed(s.started_at, s.finished_at ?? null);
  if (s.matrix) {
    const counts: Partial<Record<WorkflowStatus, number>> = {};
    for (const m of s.matrix) counts[m.status] = (counts[m.status] ?? 0) + 1;
    node.matrix = { total: s.matrix.length, counts, cacheHits: s.matrix.filter((m) => m.cache_hit).length };
  }
  return node;
}

/** The static graph of a parsed workflow file (no server): types, needs and matrix sizes. */
export function graphFromFile(parsed: ParsedWorkflow): GraphNode[] {
  return parsed.order.map((name) => {
    const step = parsed.spec.steps[name]!;
    const node: GraphNode = { name, type: step.type, needs: parsed.deps[name]!, status: null };
    if (step.cache === false) node.cache = "off";
    else if (typeof step.cache === "object") node.cache = `v${step.cache.version}`;
    if (step.matrix) {
      const sizes = Object.values(step.matrix).map((v) => (Array.isArray(v) ? v.length : null));
      node.matrix = { total: sizes.includes(null) ? null : sizes.reduce<number>((a, b) => a * b!, 1), keys: Object.keys(step.matrix) };
    }
    return node;
  });
}

/** Dependency depth of each node: 0 without needs, else one more than its deepest need. */
export function layers(nodes: GraphNode[]): GraphNode[][] {
  const by = new Map(nodes.map((n) => [n.name, n]));
  const depth = new Map<string, number>();
  const visit = (n: GraphNode, stack: Set<string>): number => {
    const known = depth.get(n.name);
    if (known !== undefined) return known;
    if (stack.has(n.name)) return 0; // a cycle is reported by the parser; never loop here
    stack.add(n.name);
    const d = n.needs.reduce((m, dep) => (by.has(dep) ? Math.max(m, visit(by.get(dep)!, stack) + 1) : m), 0);
    stack.delete(n.name);
    depth.set(n.name, d);
    return d;
  };
  for (const n of nodes) visit(n, new Set());
  const out: GraphNode[][] = [];
  for (const n of nodes) (out[depth.get(n.name)!] ??= []).push(n);
  return out.filter((l) => l !== undefined);
}

const SYMBOLS: Record<WorkflowStatus | "skipped" | "static", string> = {
  succeeded: "✓",
  failed: "✗",
  running: "●",
  queued: "○",
  canceled: "⊘",
  skipped: "↷",
  static: "◇",
};

function paint(c: Colors, s: WorkflowStatus | null, skipped: boolean | undefined, text: string): string {
  if (s === null) return c.bold(text);
  if (skipped) return c.dim(text);
  switch (s) {
    case "succeeded":
      return c.green(text);
    case "failed":
      return c.red(text);
    case "running":
      return c.cyan(text);
    case "canceled":
      return c.yellow(text);
    default:
      return text;
  }
}

function symbolOf(n: GraphNode): string {
  if (n.status === null) return SYMBOLS.static;
  if (n.skipped) return SYMBOLS.skipped;
  return SYMBOLS[n.status];
}

/** "37/1000 ✓ · 8 ● · 955 ○" (run) or "×4 over i" (file). */
function matrixText(n: GraphNode): string | undefined {
  const m = n.matrix;
  if (!m) return undefined;
  if (!m.counts) return `matrix ×${m.total ?? "?"}${m.keys ? ` over ${m.keys.join(", ")}` : ""}`;
  const parts = [`${m.counts.succeeded ?? 0}/${m.total ?? 0} ${SYMBOLS.succeeded}`];
  for (const s of ["running", "queued", "failed", "canceled"] as const) if (m.counts[s]) parts.push(`${m.counts[s]} ${SYMBOLS[s]}`);
  if (m.cacheHits) parts.push(`${m.cacheHits} cached`);
  return parts.join(" · ");
}

/** The status words of a node: "succeeded 1.2s cache hit". */
function statusText(n: GraphNode): string {
  if (n.status === null) return `${n.type ?? ""}${n.cache ? ` · cache ${n.cache}` : ""}`;
  const bits: string[] = [n.skipped ? "skipped" : n.status];
  if (n.reused) bits.push("reused");
  else if (n.cacheHit) bits.push("⚡cache hit");
  else if (n.durationS !== undefined && n.durationS !== null) bits.push(duration(n.durationS));
  return bits.join(" ");
}

const ANSI = /\x1b\[[0-9;]*m/g;
/** Width of text on a terminal (ANSI colour codes take none). */
function width(s: string): number {
  return [...s.replace(ANSI, "")].length;
}
/** The first `w` visible characters of `s` (colour codes dropped), ending in "…". */
function cut(s: string, w: number): string {
  return [...s.replace(ANSI, "")].slice(0, Math.max(0, w - 1)).join("") + "…";
}
function pad(s: string, w: number): string {
  return s + " ".repeat(Math.max(0, w - width(s)));
}

/** Options of {@link renderGraph}. */
export interface RenderGraphOptions {
  /** Colour the output. @default false */
  color?: boolean;
  /** `boxes`: a box per step, side by side per layer; `lines`: one line per step. @default "boxes" */
  style?: "boxes" | "lines";
  /** Terminal width to wrap a layer's boxes at. @default 100 */
  columns?: number;
}

/**
 * Draws a workflow DAG for the terminal, layered by dependency depth: each step with its status
 * symbol and colour, a cache-hit marker, matrix counts and what it needs.
 *
 * @example
 * process.stdout.write(renderGraph(graphFromRun(run), { color: true }).join("\n") + "\n");
 */
export function renderGraph(nodes: GraphNode[], options: RenderGraphOptions = {}): string[] {
  const c = pc.createColors(options.color ?? false);
  const out: string[] = [];
  const ls = layers(nodes);
  if (options.style === "lines") {
    const nameW = Math.max(...nodes.map((n) => n.name.length));
    ls.forEach((layer, d) => {
      for (const n of layer) {
        const m = matrixText(n);
        out.push(
          `${c.dim(String(d).padStart(2))} ${paint(c, n.status, n.skipped, symbolOf(n))} ${pad(c.bold(n.name), nameW)}  ${paint(c, n.status, n.skipped, statusText(n))}${m ? `  ${m}` : ""}${n.needs.length ? c.dim(`  ← ${n.needs.join(", ")}`) : ""}`,
        );
      }
    });
    return out;
  }
  const columns = options.columns ?? 100;
  ls.forEach((layer, d) => {
    if (d > 0) out.push(c.dim("   │"), c.dim("   ▼"));
    const boxes = layer.map((n) => {
      const lines = [`${paint(c, n.status, n.skipped, symbolOf(n))} ${c.bold(n.name)}`];
      const st = statusText(n);
      if (st) lines.push(paint(c, n.status, n.skipped, st));
      const m = matrixText(n);
      if (m) lines.push(m);
      if (n.needs.length) lines.push(c.dim(`← ${n.needs.join(", ")}`));
      const w = Math.max(...lines.map(width));
      const edge = (t: string) => paint(c, n.status, n.skipped, t);
      return [edge(`┌${"─".repeat(w + 2)}┐`), ...lines.map((l) => `${edge("│")} ${pad(l, w)} ${edge("│")}`), edge(`└${"─".repeat(w + 2)}┘`)];
    });
    // Boxes side by side, wrapped to the terminal width.
    let row: string[][] = [];
    let used = 0;
    const flush = () => {
      const h = Math.max(...row.map((b) => b.length));
      for (let i = 0; i < h; i++) out.push(`   ${row.map((b) => pad(b[i] ?? "", width(b[0]!))).join(" ")}`.trimEnd());
      row = [];
      used = 0;
    };
    for (const b of boxes) {
      const w = width(b[0]!) + 1;
      if (row.length > 0 && used + w + 3 > columns) flush();
      row.push(b);
      used += w;
    }
    if (row.length > 0) flush();
  });
  return out;
}

// ── progress ────────────────────────────────────────────────────────────────────────────

/** One line per step for `--watch`: symbol, name, status, cache hit, matrix counts, duration. */
export function progressLines(run: WorkflowRun, color = false): string[] {
  const c = pc.createColors(color);
  const nodes = graphFromRun(run);
  const nameW = Math.max(4, ...nodes.map((n) => n.name.length));
  const lines = [`${c.bold(run.name)} ${c.dim(run.id)}  ${paint(c, run.status, false, run.status)}  ${duration(elapsed(run.created_at, run.finished_at))}`];
  for (const n of nodes) {
    const m = matrixText(n);
    lines.push(`  ${paint(c, n.status, n.skipped, symbolOf(n))} ${pad(n.name, nameW)}  ${paint(c, n.status, n.skipped, statusText(n))}${m ? `  ${m}` : ""}${n.status === "failed" && n.error ? c.red(`  ${n.error}`) : ""}`);
  }
  return lines;
}

/** What changed between two polls of a run, as plain lines (non-TTY `--watch`). */
function changes(prev: WorkflowRun | undefined, run: WorkflowRun): string[] {
  const out: string[] = [];
  const earlier = new Map((prev ? graphFromRun(prev) : []).map((p) => [p.name, p]));
  for (const n of graphFromRun(run)) {
    const before = earlier.get(n.name);
    const was = before ? `${before.status}|${matrixText(before) ?? ""}` : "";
    const now = `${n.status}|${matrixText(n) ?? ""}`;
    if (was === now || (before === undefined && n.status === "queued" && !n.matrix)) continue;
    const m = matrixText(n);
    out.push(`${new Date().toISOString()} ${n.name} ${statusText(n)}${m ? ` (${m})` : ""}${n.status === "failed" && n.error ? `: ${n.error}` : ""}`);
  }
  if (prev?.status !== run.status && (run.status !== "running" || prev !== undefined)) out.push(`${new Date().toISOString()} run ${run.id} ${run.status}${run.error ? `: ${run.error}` : ""}`);
  return out;
}

function isDone(run: WorkflowRun): boolean {
  return (run.status === "succeeded" || run.status === "failed" || run.status === "canceled") && !Object.values(run.steps).some((s) => s.status === "queued" || s.status === "running");
}

/**
 * Follows a run until it ends, on stderr: redrawn in place on a terminal, one line per change
 * otherwise. Resolves with the finished run.
 */
export async function watchRun(client: ForgeClient, id: string, options: { tty?: boolean; pollMs?: number; write?: (s: string) => void } = {}): Promise<WorkflowRun> {
  const write = options.write ?? ((s: string) => void process.stderr.write(s));
  const tty = options.tty ?? process.stderr.isTTY === true;
  let drawn = 0;
  let prev: WorkflowRun | undefined;
  for (;;) {
    const run = await client.getWorkflowRun(id);
    if (tty) {
      // Lines cut to the terminal width: a wrapped line would break the cursor-up redraw.
      const cols = process.stderr.columns ?? 120;
      const lines = progressLines(run, true).map((l) => (width(l) > cols - 1 ? cut(l, cols - 1) : l));
      write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[J` : ""}${lines.join("\n")}\n`);
      drawn = lines.length;
    } else {
      for (const l of changes(prev, run)) write(l + "\n");
    }
    prev = run;
    if (isDone(run)) return run;
    await new Promise((r) => setTimeout(r, options.pollMs ?? (tty ? 300 : 500)));
  }
}

// ── init ────────────────────────────────────────────────────────────────────────────────

/** The folder holding `nexa init` templates (`packages/cli/templates`). */
export function templatesDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../templates");
}

/** Template names `nexa init` knows. */
export function templateNames(): string[] {
  const dir = templatesDir();
  return existsSync(dir) ? readdirSync(dir).filter((n) => existsSync(join(dir, n, "workflow.yaml"))).sort() : [];
}

function filesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p, base) : [relative(base, p)];
  });
}

/**
 * Writes a starter workflow (and the small data it needs) into `dir`. Refuses to overwrite an
 * existing file unless `force`. Resolves with the files written.
 *
 * @example
 * await initTemplate("distill", "pipelines/distill");
 */
export async function initTemplate(name: string, dir: string, force = false): Promise<string[]> {
  const names = templateNames();
  if (!names.includes(name)) throw new Error(`unknown template ${JSON.stringify(name)}: choose one of ${names.join(", ")}`);
  const src = join(templatesDir(), name);
  const files = filesUnder(src);
  const clashes = files.filter((f) => existsSync(join(dir, f)));
  if (clashes.length > 0 && !force) {
    throw new Error(`${clashes.map((f) => join(dir, f)).join(", ")} already exist${clashes.length === 1 ? "s" : ""}: pass --force to overwrite, or --dir to write elsewhere`);
  }
  const written: string[] = [];
  for (const f of files) {
    await mkdir(dirname(join(dir, f)), { recursive: true });
    await copyFile(join(src, f), join(dir, f));
    written.push(join(dir, f));
  }
  return written;
}

// ── commands ────────────────────────────────────────────────────────────────────────────

interface RunFlags extends ClientFlags {
  input?: string[];
  watch?: boolean;
  cache: boolean;
}

/** Submits a workflow file; a 422 is printed as `FILE:LINE:COL path: message` lines and exit 1. */
async function submitFile(client: ForgeClient, file: string, flags: RunFlags): Promise<WorkflowRun | undefined> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read workflow file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { inputs, uploaded } = await prepareInputs(client, file, text, parseInputFlags(flags.input));
  if (!flags.json) for (const u of uploaded) process.stderr.write(pc.dim(`uploaded ${u.path} → ${u.digest.slice(0, 19)}… (input ${u.name})\n`));
  try {
    // As text, so the server's issues carry lines and columns.
    return await client.runWorkflow({ workflow: text, inputs, no_cache: !flags.cache });
  } catch (err) {
    const issues = issuesOf(err);
    if (!issues) throw err;
    process.stderr.write(`${pc.red("error")}: ${file} is not a valid workflow\n`);
    for (const l of formatIssues(file, issues)) process.stderr.write(`  ${l}\n`);
    process.exitCode = 1;
    return undefined;
  }
}

async function finish(client: ForgeClient, run: WorkflowRun, flags: { watch?: boolean; json?: boolean }): Promise<void> {
  if (!flags.watch) {
    if (flags.json) printJson(run);
    else process.stdout.write(`${run.id}\n`);
    return;
  }
  if (!flags.json) process.stdout.write(`${run.id}\n`);
  const done = await watchRun(client, run.id);
  if (flags.json) printJson(done);
  else if (done.status !== "succeeded") process.stderr.write(`${pc.red(done.status)}${done.error ? `: ${done.error}` : ""}\n${pc.dim(`  resume with: nexa workflows resume ${done.id} --watch`)}\n`);
  process.exitCode = done.status === "succeeded" ? 0 : 1;
}

function printRun(run: WorkflowRun): void {
  printFields([
    ["id", run.id],
    ["name", run.name],
    ["status", status(run.status)],
    ["created", `${run.created_at} (${ago(run.created_at)})`],
    ["finished", run.finished_at],
    ["duration", duration(elapsed(run.created_at, run.finished_at))],
    ["resumes", run.resume_from],
    ["no cache", run.no_cache ? "yes" : null],
    ["error", run.error],
  ]);
  printTable(
    ["step", "status", "cache", "job", "matrix", "duration", "error"],
    graphFromRun(run).map((n) => {
      const rec = run.steps[n.name]!;
      return [
        n.name,
        n.skipped ? pc.dim("skipped") : status(rec.status),
        n.reused ? "reused" : n.cacheHit ? pc.green("hit") : "",
        rec.job_id,
        matrixText(n),
        n.durationS === undefined ? "" : duration(n.durationS),
        rec.error ?? "",
      ];
    }),
  );
  const outs = Object.entries(run.outputs);
  if (outs.length > 0) {
    process.stdout.write(pc.bold("outputs\n"));
    printTable(["name", "value"], outs.map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  }
}

/**
 * Registers `nexa run FILE`, `nexa workflows list|get|cancel|resume|graph` and `nexa init TEMPLATE`.
 *
 * @example
 * const program = new Command("nexa");
 * registerWorkflowCommands(program);
 */
export function registerWorkflowCommands(program: Command): void {
  withClientOptions(
    program
      .command("run")
      .description("Run a workflow file (YAML or JSON). Prints the run id; --watch follows it and exits non-zero unless it succeeded.")
      .argument("<file>", "the workflow file")
      .option("-i, --input <name=value>", "a workflow input (repeatable); value @PATH uploads that file and passes its digest", collect)
      .option("-w, --watch", "follow each step's status until the run ends; exit non-zero unless it succeeded")
      .option("--no-cache", "run every step, even those with a cached result"),
  ).action(async (file: string, flags: RunFlags) => {
    const client = resolveClient(flags);
    const run = await submitFile(client, file, flags);
    if (run) await finish(client, run, flags);
  });

  const wf = program.command("workflows").alias("wf").description("List, inspect, cancel, resume and draw workflow runs.");

  withClientOptions(
    wf
      .command("list")
      .description("List workflow runs, newest first.")
      .option("--status <status>", `filter: ${WorkflowStatus.options.join(", ")}`)
      .option("--name <name>", "filter by workflow name")
      .option("--limit <n>", "how many", "20")
      .option("--cursor <cursor>", "page after this cursor (from a previous --json answer)"),
  ).action(async (flags: ClientFlags & { status?: string; name?: string; limit: string; cursor?: string }) => {
    if (flags.status !== undefined && !WorkflowStatus.safeParse(flags.status).success) throw new Error(`--status: expected one of ${WorkflowStatus.options.join(", ")}, got ${JSON.stringify(flags.status)}`);
    const limit = Number(flags.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new Error(`--limit: expected a whole number 1–1000, got ${JSON.stringify(flags.limit)}`);
    const page = await resolveClient(flags).listWorkflowRuns({
      ...(flags.status ? { status: flags.status as WorkflowStatus } : {}),
      ...(flags.name ? { name: flags.name } : {}),
      ...(flags.cursor ? { cursor: flags.cursor } : {}),
      limit,
    });
    if (flags.json) return printJson(page);
    printTable(
      ["id", "name", "status", "steps", "cached", "created", "duration"],
      page.items.map((r) => {
        const steps = Object.values(r.steps);
        return [
          r.id,
          r.name,
          status(r.status),
          `${steps.filter((s) => s.status === "succeeded").length}/${steps.length}`,
          steps.filter((s) => s.cache_hit || s.reused).length || "",
          ago(r.created_at),
          duration(elapsed(r.created_at, r.finished_at)),
        ];
      }),
    );
    if (page.next_cursor) process.stdout.write(pc.dim(`more: --cursor ${page.next_cursor}\n`));
  });

  withClientOptions(wf.command("get").description("Show a run: each step's status, cache hit, job and duration.").argument("<id>", "run id")).action(async (id: string, flags: ClientFlags) => {
    const run = await resolveClient(flags).getWorkflowRun(id);
    if (flags.json) printJson(run);
    else printRun(run);
  });

  withClientOptions(wf.command("cancel").description("Cancel a run: unstarted steps are canceled, running jobs stopped.").argument("<id>", "run id")).action(async (id: string, flags: ClientFlags) => {
    const run = await resolveClient(flags).cancelWorkflowRun(id);
    if (flags.json) printJson(run);
    else process.stdout.write(`${run.id} ${status(run.status)}\n`);
  });

  withClientOptions(
    wf
      .command("resume")
      .description("Start a new run of the same file and inputs that reuses every succeeded step of ID and runs the rest.")
      .argument("<id>", "the run to resume")
      .option("-w, --watch", "follow the new run until it ends; exit non-zero unless it succeeded")
      .option("--no-cache", "do not take cached results for the steps that run again"),
  ).action(async (id: string, flags: ClientFlags & { watch?: boolean; cache: boolean }) => {
    const client = resolveClient(flags);
    const run = await client.resumeWorkflowRun(id, { no_cache: !flags.cache });
    await finish(client, run, flags);
  });

  withClientOptions(
    wf
      .command("graph")
      .description("Draw a run's DAG with each step's status; given a workflow FILE, draw its static DAG (no server needed).")
      .argument("<id-or-file>", "a run id, or a workflow file path")
      .option("--lines", "one line per step instead of boxes")
      .option("--watch", "for a run: redraw until it ends"),
  ).action(async (target: string, flags: ClientFlags & { lines?: boolean; watch?: boolean }) => {
    const opts: RenderGraphOptions = { color: process.stdout.isTTY === true, style: flags.lines ? "lines" : "boxes", columns: process.stdout.columns ?? 100 };
    if (existsSync(target) && statSync(target).isFile()) {
      let parsed: ParsedWorkflow;
      try {
        parsed = parseWorkflow(readFileSync(target, "utf8"));
      } catch (err) {
        const issues = issuesOf(err);
        if (!issues) throw err;
        process.stderr.write(`${pc.red("error")}: ${target} is not a valid workflow\n`);
        for (const l of formatIssues(target, issues)) process.stderr.write(`  ${l}\n`);
        process.exitCode = 1;
        return;
      }
      if (flags.json) return printJson({ name: parsed.spec.name, nodes: graphFromFile(parsed), layers: layers(graphFromFile(parsed)).map((l) => l.map((n) => n.name)) });
      process.stdout.write(`${pc.bold(parsed.spec.name)} ${pc.dim(`(${target}, not run)`)}\n${renderGraph(graphFromFile(parsed), opts).join("\n")}\n`);
      return;
    }
    if (!/^wfr_/.test(target)) throw new Error(`${target}: no such file, and not a run id (run ids look like wfr_…)`);
    const client = resolveClient(flags);
    let drawn = 0;
    for (;;) {
      const run = await client.getWorkflowRun(target);
      if (flags.json) return printJson({ id: run.id, name: run.name, status: run.status, nodes: graphFromRun(run), layers: layers(graphFromRun(run)).map((l) => l.map((n) => n.name)) });
      const lines = [`${pc.bold(run.name)} ${pc.dim(run.id)} ${status(run.status)}`, ...renderGraph(graphFromRun(run), opts)];
      process.stdout.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[J` : ""}${lines.join("\n")}\n`);
      if (!flags.watch || isDone(run)) return;
      drawn = process.stdout.isTTY ? lines.length : 0;
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  program
    .command("init")
    .description("Write a starter workflow: distill (generate → audit → distill → train → deploy → evaluate), finetune, or eval.")
    .argument("<template>", "distill, finetune or eval")
    .option("--dir <dir>", "where to write it (default: ./<template>)")
    .option("--force", "overwrite files that exist")
    .action(async (template: string, flags: { dir?: string; force?: boolean }) => {
      const dir = flags.dir ?? template;
      const written = await initTemplate(template, dir, flags.force === true);
      for (const f of written) process.stdout.write(`wrote ${f}\n`);
      const wfFile = join(dir, "workflow.yaml");
      process.stdout.write(
        [
          "",
          pc.bold("next steps"),
          `  1. edit ${wfFile}: point the endpoints at your models (the inputs at the top)`,
          `  2. check it without a server:  nexa workflows graph ${wfFile}`,
          `  3. start a control plane and a worker:  nexa up`,
          `  4. run it and watch:  nexa run ${wfFile} --watch`,
          `     (change an input with --input name=value; a value @file uploads that file)`,
          "",
        ].join("\n"),
      );
    });
}
