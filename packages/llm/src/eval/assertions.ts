import type { EvalAssertion } from "@nexa/core";
import { validateJsonSchema } from "../client/json-schema.js";

/** The outcome of one assertion on one output. */
export interface AssertionResult {
  type: EvalAssertion["type"];
  passed: boolean;
  /** Why it failed. */
  detail?: string;
}

/**
 * Checks an output against an assertion: `equals` (after trimming surrounding whitespace),
 * `contains`, `regex` (JavaScript syntax), `json_schema` (the whole output must be JSON and valid).
 *
 * @example
 * checkAssertion({ type: "contains", value: "Paris" }, "It is Paris.") // → { type: "contains", passed: true }
 */
export function checkAssertion(assertion: EvalAssertion, output: string): AssertionResult {
  switch (assertion.type) {
    case "equals":
      return result(assertion.type, output.trim() === assertion.value.trim(), "output differs");
    case "contains":
      return result(assertion.type, output.includes(assertion.value), `output lacks ${JSON.stringify(assertion.value)}`);
    case "regex": {
      let re: RegExp;
      try {
        re = new RegExp(assertion.pattern, "u");
      } catch (e) {
        return { type: assertion.type, passed: false, detail: `invalid pattern: ${(e as Error).message}` };
      }
      return result(assertion.type, re.test(output), `no match for /${assertion.pattern}/`);
    }
    case "json_schema": {
      let value: unknown;
      try {
        value = JSON.parse(output.trim());
      } catch {
        return { type: assertion.type, passed: false, detail: "output is not JSON" };
      }
      const errors = validateJsonSchema(assertion.schema, value);
      return errors.length ? { type: assertion.type, passed: false, detail: errors.join("; ") } : { type: assertion.type, passed: true };
    }
    default: {
      const never: never = assertion;
      throw new Error(`unknown assertion ${JSON.stringify(never)}`);
    }
  }
}

function result(type: EvalAssertion["type"], passed: boolean, detail: string): AssertionResult {
  return passed ? { type, passed } : { type, passed, detail };
}
