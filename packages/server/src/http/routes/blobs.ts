import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { Artifact, CreateArtifactRequest, Digest, ForgeError, ListArtifactsQuery } from "@nexa/core";
import { z } from "zod";
import { newId } from "../../ids.js";
import { artifactFromRow } from "../../rows.js";
import type { AppContext } from "../context.js";
import { route } from "../route.js";

/** Parents one artifact may name (one bound-parameter list). */
const MAX_PARENTS = 1000;

const BlobAnswer = z.object({ digest: Digest, size: z.number().int(), created: z.boolean() });

/** Content-addressed blobs and named, versioned artifacts with lineage. */
export function blobRoutes(app: FastifyInstance, ctx: AppContext): void {
  // Blob bodies are streamed straight to disk, never buffered.
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));

  route(app, ctx, {
    method: "PUT",
    url: "/v1/blobs",
    tag: "blobs",
    summary: "Upload bytes (application/octet-stream). Optional X-Nexa-Digest is verified; answers the digest and size.",
    scope: "jobs:read",
    rawBody: true,
    response: BlobAnswer,
    handler: async ({ req, principal, reply }) => {
      const claimed = req.headers["x-nexa-digest"];
      let expected: string | undefined;
      if (typeof claimed === "string") {
        const r = Digest.safeParse(claimed);
        if (!r.success) throw new ForgeError("invalid_request", "x-nexa-digest must be sha256:<64 hex>", { details: [{ path: "x-nexa-digest", message: r.error.issues[0]!.message }] });
        expected = r.data;
      }
      // Only the octet-stream parser hands over the raw stream; any other content type arrives
      // parsed (a JSON `null` body included), and is refused here rather than dereferenced.
      const body: unknown = req.body;
      if (!(body instanceof Readable)) {
        throw new ForgeError("invalid_request", "send the blob as the request body with content-type application/octet-stream", {
          details: [{ path: "content-type", message: "expected application/octet-stream" }],
        });
      }
      const declared = Number(req.headers["content-length"]);
      if (Number.isFinite(declared) && declared > ctx.blobs.maxBytes) {
        throw new ForgeError("payload_too_large", `blob of ${declared} bytes exceeds the ${ctx.blobs.maxBytes}-byte limit`);
      }
      const { digest, size } = await ctx.blobs.put(body, expected);
      const mediaType = typeof req.headers["x-nexa-media-type"] === "string" ? req.headers["x-nexa-media-type"] : null;
      const now = Date.now();
      await ctx.db.insertInto("blobs").values({ digest, size, media_type: mediaType, created_at: now }).onConflict((oc) => oc.column("digest").doNothing()).execute();
      const owned = await ctx.db
        .insertInto("blob_owners")
        .values({ org_id: principal.orgId, digest, created_at: now })
        .onConflict((oc) => oc.columns(["org_id", "digest"]).doNothing())
        .executeTakeFirst();
      const created = Number(owned.numInsertedOrUpdatedRows ?? 0) > 0;
      reply.code(created ? 201 : 200);
      return { digest, size, created };
    },
  });

  const blobRead = async (method: "GET" | "HEAD", args: Parameters<Parameters<typeof route>[2]["handler"]>[0]) => {
    const { params, principal, req, reply } = args;
    const digest = params.digest!;
    if (!Digest.safeParse(digest).success) throw new ForgeError("invalid_request", "digest must be sha256:<64 lowercase hex>", { details: [{ path: "digest", message: "expected sha256:<hex>" }] });
    const owner = await ctx.db.selectFrom("blob_owners").select("digest").where("org_id", "=", principal.orgId).where("digest", "=", digest).executeTakeFirst();
    const size = owner ? await ctx.blobs.size(digest) : undefined;
    if (size === undefined) throw new ForgeError("not_found", `blob ${digest} not found`);
    reply.header("accept-ranges", "bytes").header("content-type", "application/octet-stream").header("etag", `"${digest}"`);
    const range = typeof req.headers.range === "string" ? parseRange(req.headers.range, size) : undefined;
    if (range === null) {
      reply.code(416).header("content-range", `bytes */${size}`);
      throw new ForgeError("invalid_request", `range not satisfiable for a blob of ${size} bytes`);
    }
    if (range) reply.code(206).header("content-range", `bytes ${range.start}-${range.end}/${size}`);
    const length = range ? range.end - range.start + 1 : size;
    reply.header("content-length", length);
    if (method === "HEAD" || length === 0) return reply.send();
    return reply.send(ctx.blobs.read(digest, range));
  };

  route(app, ctx, {
    method: "GET",
    url: "/v1/blobs/:digest",
    tag: "blobs",
    summary: "Download a blob; supports Range.",
    scope: "jobs:read",
    streams: "application/octet-stream",
    handler: (args) => blobRead("GET", args),
  });
  route(app, ctx, {
    method: "HEAD",
    url: "/v1/blobs/:digest",
    tag: "blobs",
    summary: "Whether a blob exists, and its size (content-length).",
    scope: "jobs:read",
    handler: (args) => blobRead("HEAD", args),
  });

  route(app, ctx, {
    method: "POST",
    url: "/v1/artifacts",
    tag: "artifacts",
    summary: "Record a named artifact version pointing at a blob, with its producer job and parent artifacts.",
    scope: "jobs:read",
    body: CreateArtifactRequest,
    response: Artifact,
    status: 201,
    handler: async ({ body, principal }) => {
      const blob = await ctx.db
        .selectFrom("blob_owners")
        .innerJoin("blobs", "blobs.digest", "blob_owners.digest")
        .select(["blobs.size", "blobs.media_type"])
        .where("blob_owners.org_id", "=", principal.orgId)
        .where("blob_owners.digest", "=", body.digest)
        .executeTakeFirst();
      if (!blob) throw new ForgeError("invalid_request", `no blob ${body.digest} in this org: upload it first with PUT /v1/blobs`, { details: [{ path: "digest", message: "unknown blob" }] });
      if (body.producer_job_id !== undefined) {
        const job = await ctx.db.selectFrom("jobs").select("id").where("id", "=", body.producer_job_id).where("org_id", "=", principal.orgId).executeTakeFirst();
        if (!job) throw new ForgeError("invalid_request", `producer job ${body.producer_job_id} not found`, { details: [{ path: "producer_job_id", message: "unknown job" }] });
      }
      const parents = [...new Set(body.parents ?? [])];
      if (parents.length > MAX_PARENTS) {
        throw new ForgeError("invalid_request", `an artifact may name at most ${MAX_PARENTS} parents`, { details: [{ path: "parents", message: `more than ${MAX_PARENTS} parents` }] });
      }
      if (parents.length > 0) {
        const found = await ctx.db.selectFrom("artifacts").select("id").where("org_id", "=", principal.orgId).where("id", "in", parents).execute();
        const missing = parents.filter((p) => !found.some((f) => f.id === p));
        if (missing.length > 0) throw new ForgeError("invalid_request", `parent artifacts not found: ${missing.join(", ")}`, { details: [{ path: "parents", message: "unknown artifact" }] });
      }
      // Versions count up per name; two concurrent creations race on the unique key, so retry.
      for (let tries = 0; ; tries++) {
        try {
          const row = await ctx.db.transaction().execute(async (trx) => {
            const last = await trx
              .selectFrom("artifacts")
              .select((eb) => eb.fn.max("version").as("v"))
              .where("org_id", "=", principal.orgId)
              .where("name", "=", body.name)
              .executeTakeFirst();
            const r = {
              id: newId("art"),
              org_id: principal.orgId,
              project: body.project,
              name: body.name,
              version: Number(last?.v ?? 0) + 1,
              kind: body.kind,
              digest: body.digest,
              size: Number(blob.size),
              media_type: body.media_type ?? blob.media_type,
              metadata: JSON.stringify(body.metadata ?? {}),
              producer_job_id: body.producer_job_id ?? null,
              parents: JSON.stringify(parents),
              created_at: Date.now(),
            };
            await trx.insertInto("artifacts").values(r).execute();
            return r;
          });
          return artifactFromRow(row);
        } catch (err) {
          if (tries >= 5) throw err;
        }
      }
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/artifacts",
    tag: "artifacts",
    summary: "List artifacts, newest first (filter by name, kind, producer job).",
    scope: "jobs:read",
    query: ListArtifactsQuery,
    response: z.object({ items: z.array(Artifact), next_cursor: z.string().nullable() }),
    handler: async ({ query, principal }) => {
      let q = ctx.db.selectFrom("artifacts").selectAll().where("org_id", "=", principal.orgId);
      if (query.name) q = q.where("name", "=", query.name);
      if (query.kind) q = q.where("kind", "=", query.kind);
      if (query.producer_job_id) q = q.where("producer_job_id", "=", query.producer_job_id);
      if (query.cursor) q = q.where("id", "<", query.cursor);
      const rows = await q.orderBy("id", "desc").limit(query.limit + 1).execute();
      const page = rows.slice(0, query.limit);
      return { items: page.map(artifactFromRow), next_cursor: rows.length > query.limit ? page.at(-1)!.id : null };
    },
  });

  route(app, ctx, {
    method: "GET",
    url: "/v1/artifacts/:id",
    tag: "artifacts",
    summary: "Read an artifact.",
    scope: "jobs:read",
    response: Artifact,
    handler: async ({ params, principal }) => {
      const row = await ctx.db.selectFrom("artifacts").selectAll().where("id", "=", params.id!).where("org_id", "=", principal.orgId).executeTakeFirst();
      if (!row) throw new ForgeError("not_found", `artifact ${params.id} not found`);
      return artifactFromRow(row);
    },
  });
}

/** Parses one `bytes=a-b` range; null when unsatisfiable, undefined when absent/unsupported. */
function parseRange(header: string, size: number): { start: number; end: number } | null | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (!suffix) return null;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return null;
  return { start, end };
}
