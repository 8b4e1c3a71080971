import type { FastifyReply, FastifyRequest } from "fastify";
import { Agent, type Dispatcher } from "undici";
import type { Principal } from "../auth.js";
import type { AppContext } from "../http/context.js";
import { KeyLimits } from "./key-limits.js";
import { GatewayError, toGatewayError } from "./openai-error.js";
import type { ResolvedGatewayOptions } from "./options.js";
import { RequestRecorder, type GatewayRecord } from "./request-recorder.js";
import { TargetResolver, type Variant } from "./target-resolver.js";
import { pickVariant } from "./variant.js";

/** The OpenAI paths the gateway forwards. */
export type GatewayEndpoint = "chat/completions" | "completions";

/** Where one request goes. */
interface Upstream {
  /** Base URL up to and including `/v1`. */
  baseUrl: string;
  model: string;
  apiKey: string | undefined;
  project: string;
  /** For records: `deployment:<name>` or the provider's base URL. */
  label: string;
  /** The deployment name, to forget its instances when one refuses connections. */
  deployment: string | undefined;
  orgId: string;
}

interface Usage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
}

/** What a request carries on the way through, for its record. */
interface Trace {
  t0: number;
  ts: number;
  route: string;
  variant: string | null;
  upstream: string | null;
  user: string | null;
  upstreamStart: number;
  upstreamMs: number | null;
  tokensIn: number;
  tokensOut: number;
  project: string;
}

/**
 * The OpenAI-compatible gateway: resolves the request's `model` to a route variant or a
 * deployment, applies the key's rpm/tpm, forwards over keep-alive undici connections (streams
 * passed through event by event), answers OpenAI-style errors, and records every request.
 */
export class Gateway {
  readonly resolver: TargetResolver;
  readonly recorder: RequestRecorder;
  readonly limits = new KeyLimits();
  private readonly agent: Agent;
  private closed = false;

  constructor(
    ctx: AppContext,
    readonly options: ResolvedGatewayOptions,
  ) {
    this.resolver = new TargetResolver(ctx.db, options.resolveCacheMs);
    this.recorder = new RequestRecorder(ctx.db, () => ctx.options.prices, options.flushIntervalMs);
    this.agent = new Agent({
      connections: options.connectionsPerUpstream,
      keepAliveTimeout: 10_000,
      connectTimeout: options.connectTimeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.idleTimeoutMs,
    });
  }

  /** Starts the periodic flush of request records. */
  start(): void {
    this.recorder.start();
  }

  /** Writes the buffered records and closes upstream connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.recorder.close();
    await this.agent.destroy();
  }

  /** Forwards one chat or text completion request and answers the client. */
  async forward(req: FastifyRequest, reply: FastifyReply, principal: Principal, body: Record<string, unknown>, endpoint: GatewayEndpoint): Promise<void> {
    const model = body.model as string;
    const headerUser = req.headers["x-nexa-user"];
    const user = typeof body.user === "string" && body.user !== "" ? body.user : typeof headerUser === "string" && headerUser !== "" ? headerUser : undefined;
    const stream = body.stream === true;
    const trace: Trace = { t0: performance.now(), ts: Date.now(), route: model, variant: null, upstream: null, user: user ?? null, upstreamStart: 0, upstreamMs: null, tokensIn: 0, tokensOut: 0, project: "default" };
    const abort = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    // The server closing (forceCloseConnections) closes this too, so shutdown aborts upstreams as well.
    reply.raw.once("close", onClose);
    let status = 200;
    let errorCode: string | null = null;
    try {
      this.limits.admit(principal.keyId, principal.rpm, principal.tpm);
      const resolution = await this.resolver.resolve(principal.orgId, model);
      if (resolution.kind === "none") {
        throw new GatewayError(404, "model_not_found", `the model ${JSON.stringify(model)} does not exist: no gateway route or deployment of this org has that name (GET /v1/gateway/models lists them)`, { param: "model" });
      }
      trace.route = resolution.route;
      const variant = pickVariant(resolution.variants, resolution.totalWeight, resolution.kind === "route" && resolution.sticky, resolution.route, user);
      trace.variant = variant.name;
      const up = await this.upstreamOf(principal.orgId, variant, model);
      trace.upstream = up.label;
      trace.project = up.project;
      const outBody: Record<string, unknown> = { ...body, model: up.model };
      const wantUsage = stream && (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
      if (stream) outBody.stream_options = { ...(body.stream_options as object | undefined), include_usage: true };
      const payload = JSON.stringify(outBody);
      reply.header("x-nexa-route", resolution.route).header("x-nexa-variant", variant.name);
      const res = await this.send(up, endpoint, payload, stream, abort.signal, trace);
      status = res.statusCode;
      if (status >= 200 && status < 300 && stream && String(res.headers["content-type"] ?? "").includes("text/event-stream")) {
        const end = await this.pipeEvents(reply, res, wantUsage, abort.signal, trace, variant.name);
        status = end.status;
        errorCode = end.errorCode;
      } else {
        await this.answer(reply, res, up, trace, payload, abort.signal);
      }
    } catch (err) {
      const ge = abort.signal.aborted && !(err instanceof GatewayError) ? new GatewayError(499, "client_closed", "the client closed the connection") : err;
      const mapped = toGatewayError(ge);
      status = mapped.status;
      errorCode = mapped.body.error.code;
      if (status !== 499 && !reply.sent && !reply.raw.headersSent) {
        if (mapped.retryAfterS !== undefined) reply.header("retry-after", String(mapped.retryAfterS));
        await reply.code(status).type("application/json").send(mapped.body);
      }
    } finally {
      reply.raw.off("close", onClose);
      const tokens = trace.tokensIn + trace.tokensOut;
      this.limits.charge(principal.keyId, principal.tpm, tokens);
      const rec: GatewayRecord = {
        org_id: principal.orgId,
        key_id: principal.keyId,
        route: trace.route,
        variant: trace.variant,
        upstream: trace.upstream,
        endpoint,
        user_id: trace.user,
        status,
        error_code: errorCode,
        stream: stream ? 1 : 0,
        latency_ms: performance.now() - trace.t0,
        upstream_ms: trace.upstreamMs,
        tokens_in: trace.tokensIn,
        tokens_out: trace.tokensOut,
        ts: trace.ts,
        project: trace.project,
      };
      this.recorder.add(rec);
    }
  }

  private async upstreamOf(orgId: string, variant: Variant, model: string): Promise<Upstream> {
    const t = variant.target;
    if (t.provider !== undefined) {
      let apiKey: string | undefined;
      if (t.provider.api_key_secret !== undefined) {
        apiKey = process.env[t.provider.api_key_secret];
        if (apiKey === undefined || apiKey === "") {
          throw new GatewayError(503, "provider_secret_missing", `variant ${variant.name} needs the API key in the control plane's environment variable ${t.provider.api_key_secret}, which is not set: set it and restart the control plane`);
        }
      }
      return { baseUrl: t.provider.base_url.replace(/\/+$/, ""), model: t.provider.model ?? model, apiKey, project: "default", label: t.provider.base_url, deployment: undefined, orgId };
    }
    const name = t.deployment!;
    const state = await this.resolver.instances(orgId, name);
    if (state.instances.length === 0) {
      const why = state.statuses.length === 0 ? "no deployment of this org has that name" : `its deployments are ${[...new Set(state.statuses)].join(", ")}`;
      throw new GatewayError(503, "no_healthy_deployment", `deployment ${JSON.stringify(name)} (variant ${variant.name}) has no healthy instance: ${why}`, { retryAfterS: 5 });
    }
    const inst = state.instances.length === 1 ? state.instances[0]! : state.instances[Math.floor(Math.random() * state.instances.length)]!;
    return { baseUrl: inst.baseUrl, model: name, apiKey: undefined, project: inst.project, label: `deployment:${name}`, deployment: name, orgId };
  }

  /** Sends the request upstream; connection failures and timeouts become 502/504. */
  private async send(up: Upstream, endpoint: GatewayEndpoint, payload: string, stream: boolean, signal: AbortSignal, trace: Trace): Promise<Dispatcher.ResponseData> {
    const url = new URL(`${up.baseUrl}/${endpoint}`);
    const headers: Record<string, string> = { "content-type": "application/json", accept: stream ? "text/event-stream" : "application/json" };
    if (up.apiKey !== undefined) headers.authorization = `Bearer ${up.apiKey}`;
    trace.upstreamStart = performance.now();
    try {
      return await this.agent.request({ origin: url.origin, path: url.pathname + url.search, method: "POST", headers, body: payload, signal });
    } catch (err) {
      throw this.upstreamFailure(err, up, signal);
    }
  }

  private upstreamFailure(err: unknown, up: Upstream, signal: AbortSignal): GatewayError {
    if (signal.aborted) return new GatewayError(499, "client_closed", "the client closed the connection");
    const code = (err as { code?: string }).code ?? "";
    const msg = (err as Error).message;
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
      const s = (code === "UND_ERR_HEADERS_TIMEOUT" ? this.options.timeoutMs : this.options.idleTimeoutMs) / 1000;
      return new GatewayError(504, "upstream_timeout", `upstream ${up.label} did not answer within ${s}s`, { cause: err });
    }
    if (up.deployment !== undefined) this.resolver.invalidate(up.orgId, up.deployment);
    if (code === "UND_ERR_CONNECT_TIMEOUT") return new GatewayError(502, "upstream_unreachable", `cannot connect to upstream ${up.label} within ${this.options.connectTimeoutMs / 1000}s`, { cause: err });
    return new GatewayError(502, "upstream_unreachable", `cannot reach upstream ${up.label}: ${code || msg}`, { cause: err });
  }

  /** A whole (non-streamed) answer: read it, take its usage, send it on. */
  private async answer(reply: FastifyReply, res: Dispatcher.ResponseData, up: Upstream, trace: Trace, payload: string, signal: AbortSignal): Promise<void> {
    let buf: Buffer;
    try {
      buf = Buffer.from(await res.body.arrayBuffer());
    } catch (err) {
      throw this.upstreamFailure(err, up, signal);
    }
    trace.upstreamMs = performance.now() - trace.upstreamStart;
    const status = res.statusCode;
    const contentType = String(res.headers["content-type"] ?? "application/json");
    if (status >= 500) {
      throw new GatewayError(503, "upstream_error", `upstream ${up.label} answered ${status}: ${snippet(buf)}`, { retryAfterS: 1 });
    }
    if (status === 401 || status === 403) {
      throw new GatewayError(502, "upstream_auth_failed", `upstream ${up.label} refused the gateway's credentials (${status}): check the route's api_key_secret`);
    }
    if (status >= 400) {
      // The upstream's own OpenAI-style error about the request (400, 404, 429, …), passed on.
      const retryAfter = res.headers["retry-after"];
      if (typeof retryAfter === "string") reply.header("retry-after", retryAfter);
      await reply.code(status).type(contentType).send(buf);
      return;
    }
    let parsed: { usage?: Usage } | undefined;
    try {
      parsed = JSON.parse(buf.toString("utf8")) as { usage?: Usage };
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || typeof parsed !== "object" || parsed === null) {
      throw new GatewayError(502, "bad_upstream_response", `upstream ${up.label} answered ${status} with a body that is not JSON: ${snippet(buf)}`);
    }
    const usage = parsed.usage;
    if (usage !== undefined && usage !== null && typeof usage.prompt_tokens === "number" && typeof usage.completion_tokens === "number") {
      trace.tokensIn = usage.prompt_tokens;
      trace.tokensOut = usage.completion_tokens;
    } else {
      // No usage block: count roughly (4 characters a token) so the tokens are still metered.
      trace.tokensIn = Math.ceil(payload.length / 4);
      trace.tokensOut = Math.ceil(buf.length / 4);
    }
    await reply.code(status).type(contentType).send(buf);
  }

  /**
   * Passes an SSE answer through event by event (never the whole body in memory), taking the
   * usage block the gateway asked for and dropping it again when the caller did not ask for it.
   */
  private async pipeEvents(
    reply: FastifyReply,
    res: Dispatcher.ResponseData,
    wantUsage: boolean,
    signal: AbortSignal,
    trace: Trace,
    variant: string,
  ): Promise<{ status: number; errorCode: string | null }> {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      "x-nexa-route": trace.route,
      "x-nexa-variant": variant,
    });
    const decoder = new TextDecoder();
    let pending = "";
    let deltas = 0;
    let sawUsage = false;
    try {
      for await (const chunk of res.body) {
        pending += decoder.decode(chunk as Buffer, { stream: true });
        let out = "";
        for (;;) {
          const end = eventEnd(pending);
          if (end === -1) break;
          const ev = pending.slice(0, end);
          pending = pending.slice(end + sepLength(pending, end));
          if (ev.includes('"usage":{')) {
            const u = usageOf(ev);
            if (u !== undefined) {
              sawUsage = true;
              trace.tokensIn = u.prompt;
              trace.tokensOut = u.completion;
              if (!wantUsage && u.emptyChoices) continue;
            }
          }
          if (ev.includes('"content":"')) deltas++;
          out += ev + "\n\n";
        }
        if (out !== "") await write(raw, out, signal);
      }
      if (pending.trim() !== "") await write(raw, pending, signal);
      trace.upstreamMs = performance.now() - trace.upstreamStart;
      if (!sawUsage) trace.tokensOut = deltas;
      raw.end();
      return { status: 200, errorCode: null };
    } catch (err) {
      trace.upstreamMs = performance.now() - trace.upstreamStart;
      if (!sawUsage) trace.tokensOut = deltas;
      if (signal.aborted) {
        res.body.destroy();
        raw.destroy();
        return { status: 499, errorCode: "client_closed" };
      }
      const code = (err as { code?: string }).code;
      const ge =
        code === "UND_ERR_BODY_TIMEOUT"
          ? new GatewayError(504, "upstream_timeout", `upstream ${trace.upstream ?? "?"} stopped sending for ${this.options.idleTimeoutMs / 1000}s`)
          : new GatewayError(502, "upstream_unreachable", `upstream ${trace.upstream ?? "?"} broke off the stream: ${(err as Error).message}`);
      // Headers are gone already: the error travels as a last event, as OpenAI's API does.
      if (!raw.destroyed) raw.end(`data: ${JSON.stringify(ge.toBody())}\n\n`);
      return { status: ge.status, errorCode: ge.code };
    }
  }
}

/** Index of the blank line that ends the first complete event, or -1. */
function eventEnd(s: string): number {
  const a = s.indexOf("\n\n");
  const b = s.indexOf("\r\n\r\n");
  if (a === -1) return b;
  if (b === -1) return a;
  return Math.min(a, b);
}

function sepLength(s: string, at: number): number {
  return s.startsWith("\r\n\r\n", at) ? 4 : 2;
}

/** The usage block of one SSE event, if it has a complete one. */
function usageOf(ev: string): { prompt: number; completion: number; emptyChoices: boolean } | undefined {
  const data = ev
    .split(/\r?\n/)
    .filter((l) => l.startsWith("data:"))
    .map((l) => l.slice(5).trimStart())
    .join("\n");
  try {
    const o = JSON.parse(data) as { usage?: Usage | null; choices?: unknown };
    const u = o.usage;
    if (u === null || u === undefined || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return undefined;
    return { prompt: u.prompt_tokens, completion: u.completion_tokens, emptyChoices: Array.isArray(o.choices) && o.choices.length === 0 };
  } catch {
    return undefined;
  }
}

/** Writes with backpressure; gives up (without hanging) when the client is gone. */
function write(raw: FastifyReply["raw"], text: string, signal: AbortSignal): Promise<void> {
  if (signal.aborted || raw.destroyed) return Promise.reject(new Error("client closed"));
  if (raw.write(text)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const done = () => {
      raw.off("drain", done);
      signal.removeEventListener("abort", fail);
      resolve();
    };
    const fail = () => {
      raw.off("drain", done);
      reject(new Error("client closed"));
    };
    raw.once("drain", done);
    signal.addEventListener("abort", fail, { once: true });
  });
}

function snippet(buf: Buffer): string {
  const s = buf.subarray(0, 300).toString("utf8").replace(/\s+/g, " ").trim();
  return s === "" ? "(empty body)" : s;
}
