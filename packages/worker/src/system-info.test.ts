import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import { describe, expect, it } from "vitest";
import { hardware, probePython, softwareVersions } from "./system-info.js";

describe("system info for manifests", () => {
  it("reports this machine's CPU and memory", () => {
    const hw = hardware();
    expect(hw.cpus).toBeGreaterThan(0);
    expect(hw.cpu_model).toBe(cpus()[0]?.model.trim());
    expect(hw.memory_gb).toBeGreaterThan(0);
  });

  it("reports node, forge and os, and python once probed", async () => {
    await probePython();
    const sw = await softwareVersions();
    expect(sw.node).toBe(process.versions.node);
    expect(sw.forge).toBe("0.1.0");
    expect(sw.os).toMatch(/^Linux /);
    let expected: string | undefined;
    try {
      expected = execFileSync("python3", ["-c", "import sys; print(sys.version.split()[0])"], { encoding: "utf8" }).trim();
    } catch {
      expected = undefined;
    }
    expect(sw.python).toBe(expected);
  });
});
