export * from "./rubric-judge.js";
export * from "./pairwise-judge.js";
