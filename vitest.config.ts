import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const pkgs = ["core", "sdk", "data", "llm", "server", "worker", "cli"] as const;
const alias = Object.fromEntries(
  pkgs.map((p) => [`@nexa/${p}`, fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url))]),
);

// Tests run against the TypeScript sources (aliases), so `npm test` never depends on a stale build.
export default defineConfig({
  resolve: { alias },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "examples/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // 2-core machines: keep parallelism modest so timing-sensitive integration tests stay honest.
    maxWorkers: 2,
    // picocolors turns colour on whenever CI is set; tests read plain text.
    env: { NO_COLOR: "1" },
  },
});
