import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, test } from "vitest";

// The Python side (the stdlib helper `python/nexa_forge` and the torch recipes) is tested with
// pytest; this runs that suite with the interpreter CI prepares (.ci/run exports NEXA_PYTHON).
const python = process.env.NEXA_PYTHON;
if (!python) {
  if (process.env.CI === "true") throw new Error("CI must set NEXA_PYTHON to the test venv's python (see .ci/run)");
  console.warn("Python tests skipped: set NEXA_PYTHON to a venv with python/requirements-test.txt installed to run them.");
}

describe.skipIf(!python)("python (pytest)", () => {
  test("python/tests pass", () => {
    const root = join(import.meta.dirname, "..");
    const r = spawnSync(python!, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "python/tests"], { cwd: root, encoding: "utf8", timeout: 600_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/\d+ passed/);
  }, 620_000);
});
