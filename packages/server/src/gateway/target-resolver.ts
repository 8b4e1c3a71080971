import { GatewayRoute, gatewayVariantName, type GatewayTarget } from "@nexa/core";
import type { Kysely } from "kysely";
import { iso, json } from "../rows.js";
import type { Database } from "../store/index.js";
import type { GatewayRoutesTable } from "../store/schema.js";

/** A weighted variant of a resolved model name. */
export interface Variant {
  name: string;
  weight: number;
  target: GatewayTarget;
}

/** What a model name resolves to: a route (one or more variants), a bare deployment, or nothing. */
export type Resolution =
  | { kind: "route"; route: string; sticky: boolean; variants: Variant[]; totalWeight: number }
  | { kind: "deployment"; route: string; variants: [Variant]; totalWeight: number }
  | { kind: "none" };

/** One servable instance of a deployment. */
export interface Instance {
  /** Base URL up to and including `/v1`. */
  baseUrl: string;
  project: string;
  deploymentId: string;
}

/** The deployment rows of a name: the servable instances, and the statuses of the rest (for the 503 message). */
export interface DeploymentState {
  instances: Instance[];
  statuses: string[];
}

interface Entry<T> {
  expires: number;
  value: Promise<T>;
}

/** A stored route as the API lists it. */
export function routeFromRow(row: GatewayRoutesTable): GatewayRoute {
  return {
    name: row.name,
    targets: json<GatewayTarget[]>(row.targets, []).map((t) => ({ ...t, variant: gatewayVariantName(t) })),
    sticky: row.sticky === 1,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/**
 * Resolves model names to routes and deployments to servable instances, each answer reused for
 * `cacheMs` (concurrent misses share one query). A route change on this control plane drops its
 * entry at once; other replicas see it within `cacheMs`.
 */
export class TargetResolver {
  private readonly models = new Map<string, Entry<Resolution>>();
  private readonly deployments = new Map<string, Entry<DeploymentState>>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly cacheMs: number,
  ) {}

  /** What `model` means for `orgId`. */
  resolve(orgId: string, model: string): Promise<Resolution> {
    return cached(this.models, `${orgId}\u0000${model}`, this.cacheMs, () => this.load(orgId, model));
  }

  /** The servable instances of deployment `name` of `orgId`. */
  instances(orgId: string, name: string): Promise<DeploymentState> {
    return cached(this.deployments, `${orgId}\u0000${name}`, this.cacheMs, () => this.loadDeployment(orgId, name));
  }

  /** Forgets what is known about `name` (after a route change, or an instance that refused connections). */
  invalidate(orgId: string, name: string): void {
    this.models.delete(`${orgId}\u0000${name}`);
    this.deployments.delete(`${orgId}\u0000${name}`);
  }

  private async load(orgId: string, model: string): Promise<Resolution> {
    const row = await this.db.selectFrom("gateway_routes").selectAll().where("org_id", "=", orgId).where("name", "=", model).executeTakeFirst();
    if (row !== undefined) {
      const r = routeFromRow(row);
      const variants = r.targets.map((t) => ({ name: t.variant, weight: t.weight, target: t as GatewayTarget }));
      return { kind: "route", route: r.name, sticky: r.sticky, variants, totalWeight: variants.reduce((s, v) => s + v.weight, 0) };
    }
    const exists = await this.db.selectFrom("deployments").select("id").where("org_id", "=", orgId).where("name", "=", model).limit(1).executeTakeFirst();
    if (exists === undefined) return { kind: "none" };
    return { kind: "deployment", route: model, variants: [{ name: model, weight: 1, target: { deployment: model, weight: 1 } }], totalWeight: 1 };
  }

  private async loadDeployment(orgId: string, name: string): Promise<DeploymentState> {
    const rows = await this.db.selectFrom("deployments").select(["id", "url", "status", "project"]).where("org_id", "=", orgId).where("name", "=", name).execute();
    const instances: Instance[] = [];
    const statuses: string[] = [];
    for (const r of rows) {
      if (r.status === "healthy" && r.url !== null) instances.push({ baseUrl: v1Base(r.url), project: r.project, deploymentId: r.id });
      else statuses.push(r.status);
    }
    return { instances, statuses };
  }
}

/** A deployment registers its server root (`http://host:port`); the OpenAI paths live under `/v1`. */
function v1Base(url: string): string {
  const u = url.replace(/\/+$/, "");
  return /\/v1$/.test(u) ? u : `${u}/v1`;
}

function cached<T>(map: Map<string, Entry<T>>, key: string, ttlMs: number, load: () => Promise<T>): Promise<T> {
  const now = Date.now();
  const hit = map.get(key);
  if (hit !== undefined && hit.expires > now) return hit.value;
  if (map.size > 50_000) map.clear();
  const value = load();
  map.set(key, { expires: now + ttlMs, value });
  // A failed lookup is not remembered.
  value.catch(() => map.delete(key));
  return value;
}
