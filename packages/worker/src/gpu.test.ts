import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discoverGpus, parseNvidiaSmi } from "./gpu.js";

let bin: string;
let emptyBin: string;
let argsFile: string;

beforeAll(async () => {
  bin = await mkdtemp(join(tmpdir(), "nexa-gpu-"));
  emptyBin = await mkdtemp(join(tmpdir(), "nexa-nogpu-"));
  argsFile = join(bin, "args");
  // A stand-in for the real driver tool: records its arguments and prints what nvidia-smi prints for two H100s.
  await writeFile(
    join(bin, "nvidia-smi"),
    `#!/bin/sh\necho "$@" > "${argsFile}"\nprintf '0, NVIDIA H100 80GB HBM3, 81559, 550.54.15\\n1, NVIDIA H100 80GB HBM3, 81559, 550.54.15\\n'\n`,
  );
  await chmod(join(bin, "nvidia-smi"), 0o755);
  await writeFile(join(emptyBin, "nvidia-smi"), "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2\nexit 9\n");
  await chmod(join(emptyBin, "nvidia-smi"), 0o755);
});
afterAll(async () => {
  await rm(bin, { recursive: true, force: true });
  await rm(emptyBin, { recursive: true, force: true });
});

const withPath = (first: string) => ({ ...process.env, PATH: `${first}${delimiter}${process.env.PATH ?? ""}` });

describe("discoverGpus", () => {
  it("asks nvidia-smi on PATH with the documented query", async () => {
    const gpus = await discoverGpus("auto", { env: withPath(bin) });
    expect(gpus).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", memory_gb: 79.6, driver: "550.54.15" },
      { index: 1, name: "NVIDIA H100 80GB HBM3", memory_gb: 79.6, driver: "550.54.15" },
    ]);
    expect((await readFile(argsFile, "utf8")).trim()).toBe("--query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits");
  });

  it("finds none when nvidia-smi is absent or fails", async () => {
    expect(await discoverGpus("auto", { env: { ...process.env, PATH: "/nonexistent" } })).toEqual([]);
    expect(await discoverGpus("auto", { env: withPath(emptyBin) })).toEqual([]);
  });

  it("trusts a number, keeping what nvidia-smi knows", async () => {
    expect(await discoverGpus(3, { env: withPath(bin) })).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", memory_gb: 79.6, driver: "550.54.15" },
      { index: 1, name: "NVIDIA H100 80GB HBM3", memory_gb: 79.6, driver: "550.54.15" },
      { index: 2, name: "gpu", memory_gb: 0 },
    ]);
    expect(await discoverGpus(2, { env: { ...process.env, PATH: "/nonexistent" } })).toEqual([
      { index: 0, name: "gpu", memory_gb: 0 },
      { index: 1, name: "gpu", memory_gb: 0 },
    ]);
    expect(await discoverGpus(0, { env: withPath(bin) })).toEqual([]);
    await expect(discoverGpus(-1)).rejects.toThrow(/non-negative integer/);
  });

  it("parses odd rows", () => {
    expect(parseNvidiaSmi("0, Tesla T4, 15360, [N/A]\n\ngarbage\n")).toEqual([{ index: 0, name: "Tesla T4", memory_gb: 15 }]);
  });
});
