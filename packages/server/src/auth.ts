import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { ForgeError, scopeAllows, Scope, type ApiKey } from "@nexa/core";
import type { Kysely } from "kysely";
import { newId } from "./ids.js";
import { iso, json } from "./rows.js";
import type { Database } from "./store/index.js";
import type { ApiKeysTable } from "./store/schema.js";

/** Who is calling: resolved from the bearer key. */
export interface Principal {
  keyId: string;
  orgId: string;
  scopes: Scope[];
  /** The first-start key of the default org: may manage orgs. */
  instanceAdmin: boolean;
  rateLimitRps: number | null;
  /** Gateway requests / tokens per minute (null or absent: unlimited). */
  rpm?: number | null;
  tpm?: number | null;
}

/** A new raw key: `nxk_` + 32 random bytes in base64url. */
export function generateKey(): string {
  return `nxk_${randomBytes(32).toString("base64url")}`;
}

/** SHA-256 of a raw key, hex: the only form stored. */
export function hashKey(raw: string): string {
  return createHash("sha256").update(raw).digest("hex");
}

function keyFromRow(row: ApiKeysTable, raw?: string): ApiKey {
  const out: ApiKey = {
    id: row.id,
    name: row.name,
    scopes: json(row.scopes, []),
    prefix: row.prefix,
    created_at: iso(row.created_at),
    last_used_at: row.last_used_at === null ? null : iso(row.last_used_at),
    revoked_at: row.revoked_at === null ? null : iso(row.revoked_at),
    rpm: row.rpm,
    tpm: row.tpm,
  };
  if (raw !== undefined) out.key = raw;
  return out;
}

/**
 * API keys: creation, listing, revocation and verification. Lookups go by the key's SHA-256
 * (indexed), then the stored hash is compared in constant time; verified keys are cached for
 * a few seconds so the hot path does not hit the database on every request.
 */
export class Keys {
  private readonly cache = new Map<string, { at: number; principal: Principal | null }>();
  private readonly cacheMs = 5000;
  private readonly lastUsedWrites = new Map<string, number>();

  constructor(private readonly db: Kysely<Database>) {}

  /** Creates a key in `orgId`; the raw key is returned once. */
  async create(orgId: string, name: string, scopes: Scope[], options: { instanceAdmin?: boolean; rateLimitRps?: number; rpm?: number; tpm?: number; raw?: string } = {}): Promise<ApiKey> {
    const raw = options.raw ?? generateKey();
    const row: ApiKeysTable = {
      id: newId("key"),
      org_id: orgId,
      name,
      hash: hashKey(raw),
      prefix: raw.slice(0, 10),
      scopes: JSON.stringify(scopes),
      instance_admin: options.instanceAdmin ? 1 : 0,
      rpm: options.rpm ?? null,
      tpm: options.tpm ?? null,
      rate_limit_rps: options.rateLimitRps ?? null,
      created_at: Date.now(),
      last_used_at: null,
      revoked_at: null,
    };
    await this.db.insertInto("api_keys").values(row).execute();
    return keyFromRow(row, raw);
  }

  /** Keys of an org. */
  async list(orgId: string): Promise<ApiKey[]> {
    const rows = await this.db.selectFrom("api_keys").selectAll().where("org_id", "=", orgId).orderBy("created_at", "asc").execute();
    return rows.map((r) => keyFromRow(r));
  }

  /** Revokes a key of the org (404 for another org's). */
  async revoke(orgId: string, id: string): Promise<void> {
    const res = await this.db.updateTable("api_keys").set({ revoked_at: Date.now() }).where("id", "=", id).where("org_id", "=", orgId).where("revoked_at", "is", null).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      const exists = await this.db.selectFrom("api_keys").select("id").where("id", "=", id).where("org_id", "=", orgId).executeTakeFirst();
      if (!exists) throw new ForgeError("not_found", `key ${id} not found`);
    }
    this.cache.clear();
  }

  /** Verifies a raw key; 401 when missing, malformed, unknown or revoked. */
  async verify(raw: string | undefined): Promise<Principal> {
    if (raw === undefined || raw === "") throw new ForgeError("unauthenticated", "missing API key: send Authorization: Bearer nxk_… or X-Nexa-Api-Key");
    if (!raw.startsWith("nxk_") || raw.length > 200) throw new ForgeError("unauthenticated", "invalid API key");
    const hash = hashKey(raw);
    const now = Date.now();
    const hit = this.cache.get(hash);
    let principal: Principal | null;
    if (hit && now - hit.at < this.cacheMs) {
      principal = hit.principal;
    } else {
      const row = await this.db.selectFrom("api_keys").selectAll().where("hash", "=", hash).executeTakeFirst();
      principal = null;
      if (row && row.revoked_at === null && timingSafeEqual(Buffer.from(row.hash, "hex"), Buffer.from(hash, "hex"))) {
        principal = {
          keyId: row.id,
          orgId: row.org_id,
          scopes: Scope.array().parse(json(row.scopes, [])),
          instanceAdmin: row.instance_admin === 1,
          rateLimitRps: row.rate_limit_rps,
          rpm: row.rpm,
          tpm: row.tpm,
        };
      }
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(hash, { at: now, principal });
    }
    if (!principal) throw new ForgeError("unauthenticated", "invalid or revoked API key");
    if (now - (this.lastUsedWrites.get(principal.keyId) ?? 0) > 60_000) {
      this.lastUsedWrites.set(principal.keyId, now);
      await this.db.updateTable("api_keys").set({ last_used_at: now }).where("id", "=", principal.keyId).execute();
    }
    return principal;
  }
}

/** 403 unless the principal holds `scope`. */
export function requireScope(p: Principal, scope: Scope): void {
  if (!scopeAllows(p.scopes, scope)) throw new ForgeError("forbidden", `this key lacks the ${scope} scope`);
}

/**
 * Per-key token bucket: `rps` tokens a second, bursts up to `2·rps`. Over the limit, the
 * answer is 429 with `Retry-After`.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly defaultRps: number) {}

  /** Takes one token for `key`; throws `rate_limited` when the bucket is empty. */
  take(key: string, rps: number | null): void {
    const rate = rps ?? this.defaultRps;
    if (!Number.isFinite(rate) || rate <= 0) return;
    const burst = Math.max(1, rate * 2);
    const now = Date.now();
    const b = this.buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      const retryAfterS = Math.max(1, Math.ceil((1 - b.tokens) / rate));
      throw new ForgeError("rate_limited", `rate limit of ${rate} requests/s exceeded for this key`, { retryable: true, retryAfterS });
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
  }
}
