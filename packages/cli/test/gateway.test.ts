import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { startServer, type RunningServer } from "@nexa/server";
import { afterAll, beforeAll, expect, test } from "vitest";
import { registerAdminCommands } from "../src/commands/admin.js";
import { parseTarget, registerGatewayCommands } from "../src/commands/gateway.js";
import { captureCli } from "./support/in-process.js";

let server: RunningServer;
let home: string;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "nexa-cli-gw-"));
  server = await startServer({ home, port: 0, writeCredentials: false });
});
afterAll(async () => {
  await server?.close();
  rmSync(home, { recursive: true, force: true });
});

const nexa = (args: string[]) =>
  captureCli(async () => {
    const program = new Command("nexa").exitOverride();
    registerAdminCommands(program);
    registerGatewayCommands(program);
    await program.parseAsync(["node", "nexa", ...args, "--url", server.url, "--api-key", server.adminKey!]);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  });

test("nexa keys create --rpm --tpm stores the key's gateway limits", async () => {
  const r = await nexa(["keys", "create", "limited", "--scopes", "worker", "--rpm", "60", "--tpm", "5000", "--json"]);
  expect(r.code, r.err).toBe(0);
  const key = JSON.parse(r.out) as { id: string };
  const row = await server.ctx.db.selectFrom("api_keys").select(["rpm", "tpm"]).where("id", "=", key.id).executeTakeFirstOrThrow();
  expect(row).toEqual({ rpm: 60, tpm: 5000 });
  const bad = await nexa(["keys", "create", "bad", "--rpm", "-3"]);
  expect(bad.code).toBe(1);
  expect(bad.err).toContain("rpm");
});

test("nexa gateway routes set|list|delete, with --json", async () => {
  const set = await nexa(["gateway", "routes", "set", "chat", "--target", "deployment=tiny-a,weight=9", "--target", "provider=https://api.example.com/v1,model=gpt-x,secret=EXAMPLE_KEY,variant=ext", "--no-sticky", "--json"]);
  expect(set.code, set.err).toBe(0);
  expect(JSON.parse(set.out)).toMatchObject({
    name: "chat",
    sticky: false,
    targets: [
      { deployment: "tiny-a", weight: 9, variant: "tiny-a" },
      { provider: { base_url: "https://api.example.com/v1", model: "gpt-x", api_key_secret: "EXAMPLE_KEY" }, weight: 1, variant: "ext" },
    ],
  });
  const list = await nexa(["gateway", "routes", "list", "--json"]);
  expect((JSON.parse(list.out) as { name: string }[]).map((r) => r.name)).toEqual(["chat"]);
  const table = await nexa(["gateway", "routes", "list"]);
  expect(table.out).toContain("tiny-a:9");
  const del = await nexa(["gateway", "routes", "delete", "chat", "--json"]);
  expect(JSON.parse(del.out)).toEqual({ name: "chat", deleted: true });
  const again = await nexa(["gateway", "routes", "delete", "chat"]);
  expect(again.code).toBe(1);
  expect(again.err).toContain("not found");
  // The server's 422 names the field when a target is malformed.
  const bad = await nexa(["gateway", "routes", "set", "x", "--target", "provider=ftp://nope"]);
  expect(bad.code).toBe(1);
  expect(bad.err).toContain("targets.0.provider.base_url");
});

test("--target specs are checked before anything is sent", () => {
  expect(() => parseTarget("deployment=a,colour=red")).toThrow(/keys deployment, provider/);
  expect(() => parseTarget("weight=2")).toThrow(/exactly one of deployment/);
  expect(() => parseTarget("deployment=a,weight=0")).toThrow(/positive/);
  expect(parseTarget("deployment=a,weight=2.5")).toEqual({ deployment: "a", weight: 2.5 });
});
