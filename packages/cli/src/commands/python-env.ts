import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** The modules `recipes/torch` (train.py, serve.py) import. */
export const RECIPE_MODULES = ["torch", "transformers", "numpy", "safetensors"] as const;

/** Options of {@link ensureRecipePython}. */
export interface PythonEnvOptions {
  /** Where a venv is created when no Python has the modules (`<home>/venv`). Usually `NEXA_HOME`. */
  home: string;
  /** The pip requirements file to install into a new venv (`recipes/torch/requirements.txt`). */
  requirements: string;
  /** Modules a Python must have to be used. @default RECIPE_MODULES */
  modules?: readonly string[];
  /** Pythons tried in order before creating a venv (`NEXA_PYTHON` is checked first, and alone). @default [`<home>/venv/bin/python`, "python3"] */
  candidates?: readonly string[];
  /** The Python a new venv is made with. @default "python3" */
  basePython?: string;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Progress lines. */
  say?: (line: string) => void;
}

/** The Python {@link ensureRecipePython} settled on. */
export interface PythonEnv {
  python: string;
  /** `env`: NEXA_PYTHON; `found`: a candidate had everything; `installed`: pip installed into `<home>/venv`. */
  source: "env" | "found" | "installed";
}

/** A Python could not be found or set up; `message` says what to do. */
export class PythonSetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PythonSetupError";
  }
}

const CHECK = "import importlib.util, sys; print(','.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))";

/**
 * The modules of `modules` that `python` lacks (`[]`: it has them all), or `null` when that
 * Python does not run at all. Looks the modules up without importing them (fast, even for torch).
 *
 * @example
 * await missingModules("python3", ["torch", "numpy"]); // ["torch"]
 */
export async function missingModules(python: string, modules: readonly string[]): Promise<string[] | null> {
  const r = await run(python, ["-c", CHECK, ...modules], {});
  if (r.code !== 0) return null;
  return r.out.trim() === "" ? [] : r.out.trim().split(",");
}

/**
 * Finds a Python that can run the torch recipes, or sets one up: `NEXA_PYTHON` when set (it must
 * have the modules: it is never installed into), else the first candidate that has them, else a
 * venv at `<home>/venv` (created with `python3 -m venv` when missing) into which pip installs the
 * requirements file, its progress summarised through `say`. Throws {@link PythonSetupError} with
 * what to install or set when that cannot work.
 *
 * @example
 * const { python } = await ensureRecipePython({ home: nexaHome(), requirements: "recipes/torch/requirements.txt" });
 * process.env.NEXA_PYTHON = python;
 */
export async function ensureRecipePython(options: PythonEnvOptions): Promise<PythonEnv> {
  const env = options.env ?? process.env;
  const modules = options.modules ?? RECIPE_MODULES;
  const say = options.say ?? (() => {});
  const need = modules.join(", ");
  const fromEnv = env.NEXA_PYTHON;
  if (fromEnv !== undefined && fromEnv !== "") {
    const missing = await missingModules(fromEnv, modules);
    if (missing === null) throw new PythonSetupError(`NEXA_PYTHON=${fromEnv} does not run: point NEXA_PYTHON at a Python 3.10+ with ${need}, or unset it to let nexa set up a venv under ${options.home}`);
    if (missing.length > 0) {
      throw new PythonSetupError(`NEXA_PYTHON=${fromEnv} lacks ${missing.join(", ")}: run \`${fromEnv} -m pip install -r ${options.requirements}\`, or unset NEXA_PYTHON to let nexa set up a venv under ${options.home}`);
    }
    return { python: fromEnv, source: "env" };
  }
  const venv = join(options.home, "venv");
  const venvPython = join(venv, "bin", "python");
  for (const candidate of options.candidates ?? [venvPython, "python3"]) {
    if ((await missingModules(candidate, modules))?.length === 0) return { python: candidate, source: "found" };
  }

  const t0 = Date.now();
  const at = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  if (!existsSync(venvPython)) {
    const base = options.basePython ?? "python3";
    say(`no Python with ${need} found: creating a venv at ${venv}`);
    await mkdir(options.home, { recursive: true });
    const made = await run(base, ["-m", "venv", venv], env);
    if (made.spawnError) throw new PythonSetupError(`cannot run ${base}: install Python 3.10+ (Debian/Ubuntu: apt install python3 python3-venv; macOS: brew install python), or set NEXA_PYTHON to a Python with ${need}`);
    if (made.code !== 0) {
      throw new PythonSetupError(`${base} -m venv ${venv} failed (exit ${made.code}): ${lastLines(made.out, 5)}\n(Debian/Ubuntu: apt install python3-venv), or set NEXA_PYTHON to a Python with ${need}`);
    }
  }
  const retries = await pipRetriesFor(venvPython, env);
  if (retries.note !== undefined) say(retries.note);
  say(`pip install -r ${options.requirements} into ${venv} (the first time takes a few minutes: torch is a large download)`);
  const pip = await pipInstall(venvPython, [...retries.args, "-r", options.requirements], env, (line) => say(`  pip ${at()}: ${line}`));
  if (pip.code !== 0) {
    throw new PythonSetupError(
      `pip install into ${venv} failed (exit ${pip.code}); its last lines:\n${pip.tail.join("\n")}\n` +
        `Check the network or the package index (pip config list), then run nexa demo again; or install ${need} yourself and set NEXA_PYTHON to that Python`,
    );
  }
  const missing = await missingModules(venvPython, modules);
  if (missing === null || missing.length > 0) {
    throw new PythonSetupError(`${venvPython} still lacks ${(missing ?? [...modules]).join(", ")} after pip install -r ${options.requirements}: add them there, or set NEXA_PYTHON to a Python with ${need}`);
  }
  say(`Python ready in ${at()}: ${venvPython}`);
  return { python: venvPython, source: "installed" };
}

/**
 * pip's `--retries 0` when its primary index does not answer. pip looks every requirement up there
 * before its extra indexes and `--find-links` folders, retrying a refused connection five times
 * with backoff: about 8 s per package on a machine that installs from a local mirror, some five
 * minutes for torch and its dependencies. Left to pip when `PIP_RETRIES` is set, when a proxy is
 * (the probe would not use it), and for a `file:` index.
 *
 * @example
 * await pipRetriesFor(".venv/bin/python", process.env); // { args: [] } where pypi.org answers
 */
export async function pipRetriesFor(python: string, env: NodeJS.ProcessEnv): Promise<{ args: string[]; note?: string }> {
  const proxy = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"].some((k) => (env[k] ?? "") !== "");
  if ((env.PIP_RETRIES ?? "") !== "" || proxy) return { args: [] };
  let index = env.PIP_INDEX_URL ?? "";
  if (index === "") {
    const r = await run(python, ["-m", "pip", "config", "get", "global.index-url"], env);
    const configured = r.code === 0 ? r.out.split("\n").map((l) => l.trim()).find((l) => /^[a-z][a-z0-9+.-]*:/i.test(l)) : undefined;
    index = configured ?? "https://pypi.org/simple";
  }
  let url: URL;
  try {
    url = new URL(index);
  } catch {
    return { args: [] };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { args: [] };
  // fetch refuses a URL with credentials; a 401 without them still shows the index answers.
  url.username = "";
  url.password = "";
  try {
    // Any HTTP answer, even an error status, means pip can reach it and its retries may help.
    await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(3000) });
    return { args: [] };
  } catch (err) {
    const why = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
    return { args: ["--retries", "0"], note: `pip's index ${url.href} does not answer (${why}): pip runs with --retries 0, so each lookup there fails at once and pip goes on to its other indexes (set PIP_RETRIES to choose)` };
  }
}

/**
 * `python -m pip install ARGS`, its output boiled down to a line per package collected or
 * downloaded and one for the install, reported through `onStage`.
 */
async function pipInstall(python: string, args: string[], env: NodeJS.ProcessEnv, onStage: (line: string) => void): Promise<{ code: number | null; tail: string[] }> {
  const tail: string[] = [];
  let collected = 0;
  const onLine = (raw: string) => {
    const line = raw.trim();
    // The local mirror's "Location … is ignored" notes are noise, not progress.
    if (line === "" || /^WARNING: Location /.test(line)) return;
    tail.push(line);
    if (tail.length > 15) tail.shift();
    let m: RegExpMatchArray | null;
    if ((m = /^Collecting (\S+)/.exec(line))) onStage(`collecting ${m[1]} (${++collected} so far)`);
    // A wheel from a local mirror or --find-links folder.
    else if ((m = /^Processing (\S+\.whl)/.exec(line))) onStage(`collecting ${m[1]!.split("/").pop() ?? m[1]} (${++collected} so far)`);
    else if ((m = /^Downloading (\S+) \(([^)]+)\)/.exec(line))) onStage(`downloading ${m[1]!.split("/").pop() ?? m[1]} (${m[2]})`);
    else if ((m = /^Installing collected packages: (.*)$/.exec(line))) {
      const names = m[1]!.split(", ");
      onStage(`installing ${names.length} package${names.length === 1 ? "" : "s"} (${names.slice(0, 6).join(", ")}${names.length > 6 ? ", …" : ""})`);
    } else if (/^Successfully installed /.test(line)) onStage("installed");
    else if (/^(ERROR|error):/.test(line)) onStage(line);
  };
  const r = await run(python, ["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", ...args], env, onLine);
  if (r.spawnError) return { code: null, tail: [r.spawnError.message] };
  return { code: r.code, tail };
}

interface RunResult {
  code: number | null;
  out: string;
  spawnError?: Error;
}

/** Runs a process to its end; stdout and stderr together, line by line to `onLine` when given. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        if (out.length < 1_000_000) out += line + "\n";
        onLine?.(line);
      });
    }
    child.once("error", (err) => resolve({ code: null, out, spawnError: err }));
    child.once("close", (code) => resolve({ code, out }));
  });
}

function lastLines(text: string, n: number): string {
  return text.trim().split("\n").slice(-n).join("\n");
}
