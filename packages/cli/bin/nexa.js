#!/usr/bin/env node
import { main } from "../dist/index.js";

// A reader that goes away (`nexa jobs list | head -1`, `nexa jobs logs -f … | grep -m1 x`) ends
// the command quietly, as it ends other Unix tools, instead of with an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
