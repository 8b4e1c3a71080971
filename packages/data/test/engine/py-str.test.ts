import { describe, expect, it } from "vitest";
import { pySplitlines } from "../../src/engine/text/py-str.js";

describe("pySplitlines", () => {
  it("equals Python's str.splitlines() with and without the rarer line breaks", () => {
    // Expected: CPython 3.11 `s.splitlines()`.
    const cases: [string, string[]][] = [
      ["", []],
      ["\n", [""]],
      ["\n\n", ["", ""]],
      ["a", ["a"]],
      ["a\n", ["a"]],
      ["a\nb", ["a", "b"]],
      ["a\n\nb\n", ["a", "", "b"]],
      ["a\r\nb", ["a", "b"]],
      ["a\rb\n", ["a", "b"]],
      ["\r\n", [""]],
      ["x\u2028y", ["x", "y"]],
      ["x\u0085", ["x"]],
      ["\u001c", [""]],
      ["a\n\r\n", ["a", ""]],
      ["a\u000b\fb", ["a", "", "b"]],
      ["\u2029\n", ["", ""]],
      ["a\u001fb", ["a\u001fb"]],
    ];
    for (const [s, want] of cases) expect(pySplitlines(s), JSON.stringify(s)).toEqual(want);
  });
});
