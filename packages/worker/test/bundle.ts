import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const pkgs = ["core", "sdk", "data", "llm", "server", "worker"] as const;

/** Where bundles go: inside the repository, so their bare imports (zod, tar) resolve from its node_modules. */
export function bundleDir(): string {
  return join(repo, "node_modules", ".cache", "nexa-worker-tests", String(process.pid));
}

/**
 * Bundles a test entry (TypeScript, importing workspace packages by name) into one ES module in
 * `outDir`, so a test can run it as a real child process with plain `node` — no build of the
 * packages' `dist/` needed, and always the current sources. npm dependencies stay external.
 */
export async function bundleEntry(entry: string, outDir: string): Promise<string> {
  await build({
    configFile: false,
    logLevel: "silent",
    root: repo,
    resolve: { alias: Object.fromEntries(pkgs.map((p) => [`@nexa/${p}`, join(repo, `packages/${p}/src/index.ts`)])) },
    // The llm package uses ajv 8, nested under packages/llm; the root's ajv is eslint's v6. Inline it
    // so the bundle (written under the root node_modules) does not pick up the wrong one.
    ssr: { noExternal: ["ajv", "ajv-formats"] },
    build: {
      ssr: entry,
      outDir,
      emptyOutDir: true,
      minify: false,
      target: "node20",
      rollupOptions: { output: { format: "es", entryFileNames: "[name].mjs" } },
    },
  });
  const name = entry.split("/").pop()?.replace(/\.ts$/, "") ?? "entry";
  return join(outDir, `${name}.mjs`);
}
