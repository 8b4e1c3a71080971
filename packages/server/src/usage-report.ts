import type { UsageQuery, UsageReport, UsageRow } from "@nexa/core";
import { sql, type Kysely } from "kysely";
import type { Database } from "./store/index.js";

/** Aggregates metered usage of an org, grouped by day, job type, project or job. */
export async function usageReport(db: Kysely<Database>, orgId: string, q: UsageQuery, currency: string): Promise<UsageReport> {
  const keyExpr =
    q.group_by === "day"
      ? sql<string>`cast(ts / 86400000 as integer)`
      : q.group_by === "type"
        ? sql<string>`type`
        : q.group_by === "project"
          ? sql<string>`project`
          : sql<string>`job_id`;
  let query = db
    .selectFrom("usage_records")
    .select([
      keyExpr.as("key"),
      sql<number>`count(distinct job_id)`.as("jobs"),
      sql<number>`count(*)`.as("attempts"),
      sql<number>`sum(wall_s)`.as("wall_s"),
      sql<number>`sum(cpu_s)`.as("cpu_s"),
      sql<number>`sum(gpu_s)`.as("gpu_s"),
      sql<number>`sum(tokens_in)`.as("tokens_in"),
      sql<number>`sum(tokens_out)`.as("tokens_out"),
      sql<number>`sum(cost_usd)`.as("cost_usd"),
    ])
    .where("org_id", "=", orgId);
  if (q.since !== undefined) query = query.where("ts", ">=", Date.parse(q.since));
  if (q.until !== undefined) query = query.where("ts", "<", Date.parse(q.until));
  const rows = await query.groupBy(keyExpr).orderBy(keyExpr).limit(q.limit).execute();
  const out: UsageRow[] = rows.map((r) => ({
    key: q.group_by === "day" ? new Date(Number(r.key) * 86_400_000).toISOString().slice(0, 10) : String(r.key),
    jobs: Number(r.jobs),
    attempts: Number(r.attempts),
    wall_s: round(Number(r.wall_s)),
    cpu_s: round(Number(r.cpu_s)),
    gpu_s: round(Number(r.gpu_s)),
    tokens_in: Number(r.tokens_in),
    tokens_out: Number(r.tokens_out),
    cost_usd: round(Number(r.cost_usd)),
  }));
  const total: UsageRow = { key: "total", jobs: 0, attempts: 0, wall_s: 0, cpu_s: 0, gpu_s: 0, tokens_in: 0, tokens_out: 0, cost_usd: 0 };
  for (const r of out) {
    total.jobs += q.group_by === "job" || q.group_by === "type" || q.group_by === "project" ? r.jobs : 0;
    total.attempts += r.attempts;
    total.wall_s += r.wall_s;
    total.cpu_s += r.cpu_s;
    total.gpu_s += r.gpu_s;
    total.tokens_in += r.tokens_in;
    total.tokens_out += r.tokens_out;
    total.cost_usd += r.cost_usd;
  }
  if (q.group_by === "day") total.jobs = out.reduce((s, r) => s + r.jobs, 0);
  total.wall_s = round(total.wall_s);
  total.cpu_s = round(total.cpu_s);
  total.gpu_s = round(total.gpu_s);
  total.cost_usd = round(total.cost_usd);
  return { group_by: q.group_by, currency, rows: out, total };
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
