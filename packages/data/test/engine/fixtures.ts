import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Path of a datatrove parity fixture (copied from shared/fixtures, recorded from datatrove itself). */
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../fixtures/datatrove/${name}`, import.meta.url));
}

export interface SampleDoc {
  id: string;
  text: string;
}

/** The 589-document corpus sample. */
export function loadSample(): SampleDoc[] {
  return readJsonl(fixturePath("corpus_sample.jsonl")) as unknown as SampleDoc[];
}

export function readJsonl(path: string): Record<string, unknown>[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Big integers of a JSON array field, read from the raw text (JSON.parse would round them). */
export function bigints(raw: string): bigint[] {
  return [...raw.matchAll(/\d+/g)].map((m) => BigInt(m[0]));
}
