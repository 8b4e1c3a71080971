import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { exactExp, exactLog } from "../src/index.js";

// Python's math.exp / math.log (glibc) on 2000 random inputs each; glibc is not correctly rounded
// everywhere, so a handful of last-bit differences are allowed, never more than one ulp.
const libm = JSON.parse(readFileSync(new URL("./fixtures/libm.json", import.meta.url), "utf8")) as { exp: [number, number][]; log: [number, number][] };

function ulpDiff(a: number, b: number): number {
  const buf = new DataView(new ArrayBuffer(16));
  buf.setFloat64(0, a);
  buf.setFloat64(8, b);
  return Number(buf.getBigInt64(0) - buf.getBigInt64(8));
}

describe("correctly rounded exp/log agree with Python's libm", () => {
  it.each([
    ["exp", exactExp, Math.exp, libm.exp],
    ["log", exactLog, Math.log, libm.log],
  ] as const)("%s", (_n, ours, v8, table) => {
    let same = 0;
    let v8same = 0;
    for (const [x, y] of table) {
      const r = ours(x);
      expect(Math.abs(ulpDiff(r, y)), `x=${x}`).toBeLessThanOrEqual(1);
      if (r === y) same++;
      if (v8(x) === y) v8same++;
    }
    expect(same / table.length).toBeGreaterThan(0.995);
    // The point of the exercise: V8's own functions disagree far more often.
    expect(same).toBeGreaterThan(v8same);
  });
});
