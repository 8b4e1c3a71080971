import { Scope } from "@nexa/core";
import type { Command } from "commander";
import pc from "picocolors";
import { resolveClient, withClientOptions, type ClientFlags } from "../client-config.js";
import { ago, duration, printJson, printTable, status } from "../output.js";

/** Registers `nexa keys`, `nexa orgs`, `nexa usage`, `nexa workers`, `nexa artifacts`. */
export function registerAdminCommands(program: Command): void {
  const keys = program.command("keys").description("Manage API keys of your org (admin scope).");
  withClientOptions(
    keys
      .command("create")
      .description("Create a key; the raw key is printed once.")
      .argument("<name>", "a name for the key")
      .option("--scopes <list>", `comma-separated: ${Scope.options.join(", ")}`, "jobs:write")
      .option("--rate-limit <rps>", "requests/s for this key (default: the server's)")
      .option("--rpm <n>", "gateway requests per minute for this key (default: unlimited)")
      .option("--tpm <n>", "gateway tokens (prompt + completion) per minute for this key (default: unlimited)"),
  ).action(async (name: string, flags: ClientFlags & { scopes: string; rateLimit?: string; rpm?: string; tpm?: string }) => {
    const scopes = flags.scopes.split(",").map((s) => s.trim());
    for (const s of scopes) if (!Scope.safeParse(s).success) throw new Error(`--scopes: unknown scope ${JSON.stringify(s)} (one of ${Scope.options.join(", ")})`);
    const key = await resolveClient(flags).createKey({
      name,
      scopes: scopes as Scope[],
      ...(flags.rateLimit !== undefined ? { rate_limit_rps: Number(flags.rateLimit) } : {}),
      ...(flags.rpm !== undefined ? { rpm: Number(flags.rpm) } : {}),
      ...(flags.tpm !== undefined ? { tpm: Number(flags.tpm) } : {}),
    });
    if (flags.json) return printJson(key);
    process.stdout.write(`${key.key}\n`);
    process.stderr.write(pc.dim(`key ${key.id} (${key.scopes.join(",")}) — store it now: it is not shown again\n`));
  });
  withClientOptions(keys.command("list").description("List keys (never their secret).")).action(async (flags: ClientFlags) => {
    const items = await resolveClient(flags).listKeys();
    if (flags.json) return printJson(items);
    printTable(
      ["id", "name", "scopes", "prefix", "created", "last used", "revoked"],
      items.map((k) => [k.id, k.name, k.scopes.join(","), k.prefix + "…", ago(k.created_at), ago(k.last_used_at), k.revoked_at ? pc.red(ago(k.revoked_at)) : ""]),
    );
  });
  withClientOptions(keys.command("revoke").description("Revoke a key.").argument("<id>", "key id")).action(async (id: string, flags: ClientFlags) => {
    await resolveClient(flags).revokeKey(id);
    if (flags.json) return printJson({ id, revoked: true });
    process.stdout.write(`revoked ${id}\n`);
  });

  const orgs = program.command("orgs").description("Manage orgs (instance admin key).");
  withClientOptions(orgs.command("create").description("Create an org; prints its first admin key once.").argument("<name>", "org name")).action(
    async (name: string, flags: ClientFlags) => {
      const org = await resolveClient(flags).createOrg(name);
      if (flags.json) return printJson(org);
      process.stdout.write(`${org.key}\n`);
      process.stderr.write(pc.dim(`org ${org.id} (${org.name}) — its admin key above is not shown again\n`));
    },
  );
  withClientOptions(orgs.command("list").description("List orgs.")).action(async (flags: ClientFlags) => {
    const items = await resolveClient(flags).listOrgs();
    if (flags.json) return printJson(items);
    printTable(["id", "name", "created"], items.map((o) => [o.id, o.name, o.created_at]));
  });

  withClientOptions(
    program
      .command("usage")
      .description("Metered usage and cost.")
      .option("--by <group>", "group by day, type, project or job", "day")
      .option("--since <time>", "ISO time or date")
      .option("--until <time>", "ISO time or date"),
  ).action(async (flags: ClientFlags & { by: string; since?: string; until?: string }) => {
    if (!["day", "type", "project", "job"].includes(flags.by)) throw new Error(`--by: expected day, type, project or job, got ${JSON.stringify(flags.by)}`);
    const r = await resolveClient(flags).getUsage({ group_by: flags.by as "day", ...(flags.since ? { since: flags.since } : {}), ...(flags.until ? { until: flags.until } : {}) });
    if (flags.json) return printJson(r);
    const row = (x: (typeof r.rows)[number]) => [x.key, x.jobs, x.attempts, duration(x.wall_s), duration(x.cpu_s), duration(x.gpu_s), x.tokens_in + x.tokens_out, x.cost_usd.toFixed(4)];
    printTable([flags.by, "jobs", "attempts", "wall", "cpu", "gpu", "tokens", `cost ${r.currency}`], [...r.rows.map(row), row(r.total).map((c, i) => (i === 0 ? pc.bold(String(c)) : c))]);
  });

  const workers = program.command("workers").description("Inspect workers.");
  withClientOptions(workers.command("list").description("List workers.")).action(async (flags: ClientFlags) => {
    const items = await resolveClient(flags).listWorkers();
    if (flags.json) return printJson(items);
    printTable(
      ["id", "name", "status", "running", "cpus", "mem GB", "gpus", "accepts", "last seen"],
      items.map((w) => [
        w.id,
        w.name,
        w.status === "online" ? pc.green("online") : pc.dim("offline"),
        w.running,
        w.capabilities.cpus,
        w.capabilities.memory_gb,
        w.capabilities.gpus.map((g) => g.name).join(", "),
        w.accepts.join(","),
        ago(w.last_seen_at),
      ]),
    );
  });

  const artifacts = program.command("artifacts").description("Inspect artifacts.");
  withClientOptions(
    artifacts.command("list").description("List artifacts, newest first.").option("--name <name>", "only this name").option("--kind <kind>", "dataset, model, checkpoint, report, other").option("--job <id>", "produced by this job"),
  ).action(async (flags: ClientFlags & { name?: string; kind?: string; job?: string }) => {
    const page = await resolveClient(flags).listArtifacts({ ...(flags.name ? { name: flags.name } : {}), ...(flags.kind ? { kind: flags.kind as "dataset" } : {}), ...(flags.job ? { producer_job_id: flags.job } : {}) });
    if (flags.json) return printJson(page);
    printTable(["id", "name", "v", "kind", "size", "digest", "job", "created"], page.items.map((a) => [a.id, a.name, a.version, a.kind, a.size, a.digest.slice(0, 19) + "…", a.producer_job_id, ago(a.created_at)]));
  });
  withClientOptions(artifacts.command("get").description("Show an artifact.").argument("<id>", "artifact id")).action(async (id: string, flags: ClientFlags) => {
    const a = await resolveClient(flags).getArtifact(id);
    printJson(a);
  });

  void status;
}
