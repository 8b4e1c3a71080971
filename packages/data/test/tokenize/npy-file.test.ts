import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NpyWriter, readNpy } from "../../src/tokenize/index.js";
import { FIXTURES } from "./fixtures.js";

const NPY = FIXTURES + "npy/";

describe(".npy files", () => {
  it("reads what numpy wrote (v1 int32 2-D, v1 int64 1-D, v2 header)", async () => {
    const a = await readNpy(NPY + "int32_3x4.npy");
    expect(a).toMatchObject({ dtype: "<i4", shape: [3, 4] });
    expect(Array.from(a.data as Int32Array)).toEqual(Array.from({ length: 12 }, (_, i) => i - 5));
    const b = await readNpy(NPY + "int64_5.npy");
    expect(b).toMatchObject({ dtype: "<i8", shape: [5] });
    expect(Array.from(b.data as BigInt64Array)).toEqual([0n, 1n, -1n, 2n ** 40n, -(2n ** 40n)]);
    const c = await readNpy(NPY + "int32_2x3_v2.npy");
    expect(c.shape).toEqual([2, 3]);
    expect(Array.from(c.data as Int32Array)).toEqual([1, 2, 3, 4, 5, -100]);
  });

  it("writes byte for byte what numpy.save writes, appearing only when closed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nexa-npy-"));
    const w = await NpyWriter.create(join(dir, "a.npy"), "<i4", 4);
    await w.append(Int32Array.from([-5, -4, -3, -2]));
    await w.append(Int32Array.from([-1, 0, 1, 2, 3, 4, 5, 6]));
    expect(readdirSync(dir)).not.toContain("a.npy");
    await w.close();
    expect(readdirSync(dir)).toEqual(["a.npy"]);
    expect(readFileSync(join(dir, "a.npy")).equals(readFileSync(NPY + "int32_3x4.npy"))).toBe(true);
    const v = await NpyWriter.create(join(dir, "b.npy"), "<i8");
    await v.append(BigInt64Array.from([0n, 1n, -1n, 2n ** 40n, -(2n ** 40n)]));
    await v.close();
    expect(readFileSync(join(dir, "b.npy")).equals(readFileSync(NPY + "int64_5.npy"))).toBe(true);
  });

  it("rejects rows of the wrong length and files that are not npy", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nexa-npy-"));
    const w = await NpyWriter.create(join(dir, "a.npy"), "<i4", 4);
    await expect(w.append(Int32Array.from([1, 2, 3]))).rejects.toThrow(/row of 3 elements, expected 4/);
    await w.abort();
    expect(readdirSync(dir)).toEqual([]);
    await expect(readNpy(FIXTURES + "corpus.jsonl")).rejects.toThrow(/is not a \.npy file/);
  });
});
