// The stand-in OpenAI-compatible server in its own process, so the clients under test do not share
// its event loop. Prints its base URL on stdout, then serves until killed.
import { StandInServer } from "../../packages/llm/dist/index.js";

const server = await StandInServer.start({ reply: (c) => (c.kind === "chat" ? `echo: ${c.lastUser}` : " echo") });
server.keepLog = false;
process.stdout.write(`${server.url}\n`);
process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
