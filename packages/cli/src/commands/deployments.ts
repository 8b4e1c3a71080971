import { DeploymentStatus, type Deployment } from "@nexa/core";
import type { Command } from "commander";
import pc from "picocolors";
import { resolveClient, withClientOptions, type ClientFlags } from "../client-config.js";
import { ago, printFields, printJson, printTable } from "../output.js";

function colour(s: Deployment["status"]): string {
  switch (s) {
    case "healthy":
      return pc.green(s);
    case "failed":
    case "unhealthy":
      return pc.red(s);
    case "starting":
    case "stopping":
      return pc.cyan(s);
    case "stopped":
      return pc.dim(s);
  }
}

function printDeployment(d: Deployment): void {
  printFields([
    ["id", d.id],
    ["name", d.name],
    ["status", colour(d.status)],
    ["url", d.url],
    ["backend", d.backend],
    ["worker", d.worker_id],
    ["job", d.job_id],
    ["restarts", d.restarts],
    ["error", d.error],
    ["created", `${d.created_at} (${ago(d.created_at)})`],
    ["updated", `${d.updated_at} (${ago(d.updated_at)})`],
    ["stopped", d.stopped_at],
  ]);
}

/** Registers `nexa deployments list|get|stop`. */
export function registerDeploymentCommands(program: Command): void {
  const deployments = program
    .command("deployments")
    .description("Served models started by `deploy` jobs: list them, read one, stop one.")
    .addHelpText("after", "\nA deployment is servable when its status is healthy; its url is the model server's base URL.\nStart one with: nexa jobs submit -t deploy --spec '{\"model\": \"<model.tar artifact>\", \"name\": \"my-model\"}'");
  withClientOptions(
    deployments
      .command("list")
      .description("List deployments, newest first.")
      .option("--status <status>", `only this status: ${DeploymentStatus.options.join(", ")}`)
      .option("--name <name>", "only deployments of this model name"),
  ).action(async (flags: ClientFlags & { status?: string; name?: string }) => {
    if (flags.status !== undefined && !DeploymentStatus.safeParse(flags.status).success) {
      throw new Error(`--status: unknown status ${JSON.stringify(flags.status)} (one of ${DeploymentStatus.options.join(", ")})`);
    }
    const items = await resolveClient(flags).listDeployments({
      ...(flags.status !== undefined ? { status: flags.status as DeploymentStatus } : {}),
      ...(flags.name !== undefined ? { name: flags.name } : {}),
    });
    if (flags.json) return printJson(items);
    printTable(
      ["id", "name", "status", "url", "backend", "worker", "restarts", "updated"],
      items.map((d) => [d.id, d.name, colour(d.status), d.url, d.backend, d.worker_id, d.restarts, ago(d.updated_at)]),
    );
  });
  withClientOptions(deployments.command("get").description("Show one deployment.").argument("<id>", "deployment id (dep_…)")).action(async (id: string, flags: ClientFlags) => {
    const d = await resolveClient(flags).getDeployment(id);
    if (flags.json) return printJson(d);
    printDeployment(d);
  });
  withClientOptions(
    deployments
      .command("stop")
      .description("Stop a deployment: its worker stops the model server (a deploy job still starting is canceled).")
      .argument("<id>", "deployment id (dep_…)"),
  ).action(async (id: string, flags: ClientFlags) => {
    const d = await resolveClient(flags).stopDeployment(id);
    if (flags.json) return printJson(d);
    process.stdout.write(`${d.id} ${colour(d.status)}${d.status === "stopping" ? pc.dim(" (its worker stops the server on its next heartbeat)") : ""}\n`);
  });
}
