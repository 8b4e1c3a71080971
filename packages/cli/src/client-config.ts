import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { ForgeClient } from "@nexa/sdk";
import type { Command } from "commander";

/** Client-side flags shared by every command that talks to a control plane. */
export interface ClientFlags {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

/** The default control plane URL. */
export const DEFAULT_URL = "http://127.0.0.1:8000";

/** `NEXA_HOME`, default `~/.nexa`. */
export function nexaHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.NEXA_HOME !== undefined && env.NEXA_HOME !== "" ? env.NEXA_HOME : join(homedir(), ".nexa");
}

function localCredentials(env: NodeJS.ProcessEnv): { url?: string; api_key?: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(nexaHome(env), "credentials"), "utf8")) as { url?: string; api_key?: string };
  } catch {
    return undefined;
  }
}

function isLocal(url: string): boolean {
  try {
    return ["127.0.0.1", "localhost", "[::1]", "::1"].includes(new URL(url).hostname);
  } catch {
    return false;
  }
}

/**
 * Resolves the control plane URL and key: flag > env (`NEXA_URL`, `NEXA_API_KEY`) > the local
 * `credentials` file (only when the URL is on this machine) > default.
 */
export function resolveClient(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): ForgeClient {
  const creds = localCredentials(env);
  const url = flags.url ?? env.NEXA_URL ?? (creds?.url !== undefined && creds.url !== "" ? creds.url : DEFAULT_URL);
  let apiKey = flags.apiKey ?? env.NEXA_API_KEY;
  if (apiKey === undefined && isLocal(url)) apiKey = creds?.api_key;
  return new ForgeClient(apiKey === undefined ? { url } : { url, apiKey });
}

/** Adds `--url`, `--api-key` and `--json` to a command. */
export function withClientOptions(cmd: Command, json = true): Command {
  cmd.option("--url <url>", `control plane URL (env NEXA_URL; default ${DEFAULT_URL} or the local credentials file)`);
  cmd.option("--api-key <key>", "API key (env NEXA_API_KEY; default: $NEXA_HOME/credentials when the URL is local)");
  if (json) cmd.option("--json", "print JSON for scripts");
  return cmd;
}
