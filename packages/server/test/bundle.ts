import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { build } from "vite";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const pkgs = ["core", "sdk", "llm", "server"] as const;

/**
 * Bundles a TypeScript test entry (importing workspace packages by name) into one ES module, so
 * a test can run it as a real child process with plain `node` from the current sources, with no
 * build of `dist/`. npm dependencies stay external and resolve from the repository's node_modules.
 */
export async function bundleEntry(entry: string): Promise<string> {
  const outDir = join(repo, "node_modules", ".cache", "nexa-server-tests", `${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  await build({
    configFile: false,
    logLevel: "silent",
    root: repo,
    resolve: { alias: Object.fromEntries(pkgs.map((p) => [`@nexa/${p}`, join(repo, `packages/${p}/src/index.ts`)])) },
    build: {
      ssr: entry,
      outDir,
      emptyOutDir: true,
      minify: false,
      target: "node20",
      rollupOptions: { output: { format: "es", entryFileNames: "[name].mjs" } },
    },
  });
  return join(outDir, `${entry.split("/").pop()!.replace(/\.ts$/, "")}.mjs`);
}

/** A control plane running as a child process. */
export interface ChildServer {
  url: string;
  adminKey: string | undefined;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

/** Starts `fixtures/server-main.ts` (bundled) with these options and waits for its URL. */
export async function spawnServer(main: string, options: Record<string, unknown>): Promise<ChildServer> {
  const child = spawn(process.execPath, [main, JSON.stringify(options)], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  });
  const info = JSON.parse(first) as { url: string; adminKey?: string };
  return { url: info.url, adminKey: info.adminKey, child, exited };
}
