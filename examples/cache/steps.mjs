// The steps of examples/cache, chosen by argv[1]. Each writes one file to $NEXA_OUTPUTS_DIR;
// all but `stamp` are deterministic, so equal inputs give byte-identical outputs.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const input = (name) => readFileSync(join(process.env.NEXA_INPUTS_DIR, name), "utf8");
const output = (name, text) => writeFileSync(join(process.env.NEXA_OUTPUTS_DIR, name), text);

switch (process.argv[1]) {
  case "tokenize": {
    const tokens = (process.env.TEXT ?? "").toLowerCase().match(/[a-z0-9']+/g) ?? [];
    output("tokens.json", JSON.stringify(tokens));
    console.log(`${tokens.length} tokens`);
    break;
  }
  case "summarize": {
    // Stands for expensive work: what a cache hit saves.
    await new Promise((r) => setTimeout(r, Number(process.env.WORK_MS ?? 0)));
    const tokens = JSON.parse(input("tokens.json"));
    const freq = {};
    for (const t of tokens) freq[t] = (freq[t] ?? 0) + 1;
    const top = Object.entries(freq).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    output("summary.json", JSON.stringify({ tokens: tokens.length, distinct: top.length, top: top.slice(0, 5) }));
    break;
  }
  case "report": {
    const s = JSON.parse(input("summary.json"));
    output("report.md", `# Summary\n\n${s.tokens} tokens, ${s.distinct} distinct.\n\n${s.top.map(([w, n]) => `- ${w}: ${n}`).join("\n")}\n`);
    break;
  }
  case "stamp":
    output("stamp.txt", `${new Date().toISOString()} ${process.env.NEXA_JOB_ID}\n`);
    break;
  default:
    console.error(`unknown step ${JSON.stringify(process.argv[1])}: expected tokenize, summarize, report or stamp`);
    process.exit(2);
}
