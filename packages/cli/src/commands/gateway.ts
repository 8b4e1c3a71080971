import type { GatewayTarget } from "@nexa/core";
import type { Command } from "commander";
import { resolveClient, withClientOptions, type ClientFlags } from "../client-config.js";
import { printJson, printTable } from "../output.js";

const TARGET_KEYS = ["deployment", "provider", "model", "secret", "weight", "variant"];

/**
 * Parses one `--target` flag: `deployment=NAME[,weight=W][,variant=V]` or
 * `provider=BASE_URL[,model=M][,secret=ENV_VAR][,weight=W][,variant=V]`.
 */
export function parseTarget(text: string): GatewayTarget {
  const fields: Record<string, string> = {};
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const k = part.slice(0, eq).trim();
    if (eq <= 0 || !TARGET_KEYS.includes(k)) throw new Error(`--target ${JSON.stringify(text)}: expected key=value pairs with keys ${TARGET_KEYS.join(", ")}`);
    fields[k] = part.slice(eq + 1).trim();
  }
  const weight = fields.weight === undefined ? 1 : Number(fields.weight);
  if (!Number.isFinite(weight) || weight <= 0) throw new Error(`--target ${JSON.stringify(text)}: weight must be a positive number`);
  const t: Record<string, unknown> = { weight };
  if (fields.variant !== undefined) t.variant = fields.variant;
  if (fields.deployment !== undefined) t.deployment = fields.deployment;
  if (fields.provider !== undefined) {
    t.provider = { base_url: fields.provider, ...(fields.model ? { model: fields.model } : {}), ...(fields.secret ? { api_key_secret: fields.secret } : {}) };
  }
  if ((t.deployment === undefined) === (t.provider === undefined)) throw new Error(`--target ${JSON.stringify(text)}: give exactly one of deployment=… or provider=…`);
  return t as GatewayTarget;
}

/** Registers `nexa gateway routes set|list|delete` and `nexa gateway requests`. */
export function registerGatewayCommands(program: Command): void {
  const gateway = program.command("gateway").description("The OpenAI-compatible gateway: routes (A/B splits) and request records.");
  const routes = gateway.command("routes").description("Gateway routes: model names with weighted targets.");
  withClientOptions(
    routes
      .command("set")
      .description("Create or replace a route.")
      .argument("<name>", "the model name callers send")
      .requiredOption("--target <spec>", "deployment=NAME[,weight=W][,variant=V] or provider=BASE_URL[,model=M][,secret=ENV_VAR][,weight=W] (repeat for A/B)", (v: string, prev: string[] = []) => [...prev, v])
      .option("--no-sticky", "assign each request at random, even with a user id"),
  ).action(async (name: string, flags: ClientFlags & { target: string[]; sticky: boolean }) => {
    const r = await resolveClient(flags).putGatewayRoute(name, { targets: flags.target.map(parseTarget), sticky: flags.sticky });
    if (flags.json) return printJson(r);
    printTable(["variant", "target", "weight"], r.targets.map((t) => [t.variant, t.deployment ?? t.provider?.base_url, t.weight]));
  });
  withClientOptions(routes.command("list").description("List routes.")).action(async (flags: ClientFlags) => {
    const items = await resolveClient(flags).listGatewayRoutes();
    if (flags.json) return printJson(items);
    printTable(
      ["name", "targets", "sticky", "updated"],
      items.map((r) => [r.name, r.targets.map((t) => `${t.variant}:${t.weight}`).join(" "), r.sticky ? "yes" : "no", r.updated_at]),
    );
  });
  withClientOptions(routes.command("delete").description("Delete a route.").argument("<name>", "route name")).action(async (name: string, flags: ClientFlags) => {
    await resolveClient(flags).deleteGatewayRoute(name);
    if (flags.json) return printJson({ name, deleted: true });
    process.stdout.write(`deleted route ${name}\n`);
  });
  withClientOptions(
    gateway
      .command("requests")
      .description("Per route and variant: requests, error rate, p50/p99 latency, tokens.")
      .option("--route <name>", "only this route or model")
      .option("--since <time>", "ISO time")
      .option("--until <time>", "ISO time"),
  ).action(async (flags: ClientFlags & { route?: string; since?: string; until?: string }) => {
    const r = await resolveClient(flags).gatewayRequests({ ...(flags.route ? { route: flags.route } : {}), ...(flags.since ? { since: flags.since } : {}), ...(flags.until ? { until: flags.until } : {}) });
    if (flags.json) return printJson(r);
    printTable(
      ["route", "variant", "requests", "error rate", "p50 ms", "p99 ms", "tokens in", "tokens out"],
      (r.summary ?? []).map((s) => [s.route, s.variant, s.requests, s.error_rate.toFixed(4), s.latency_p50_ms, s.latency_p99_ms, s.tokens_in, s.tokens_out]),
    );
  });
}
