import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { requestHash } from "../client/request-hash.js";

/** A chat request as the stand-in hands it to a reply function. */
export interface StandInChatCall {
  kind: "chat";
  body: Record<string, unknown> & { messages: { role: string; content: unknown }[] };
  /** Content of the last user message ("" if none). */
  lastUser: string;
  hash: string;
}

/** A completions request as the stand-in hands it to a reply function. */
export interface StandInCompletionCall {
  kind: "completion";
  body: Record<string, unknown>;
  prompt: string;
  hash: string;
}

/** What one call is answered with. */
export type StandInCall = StandInChatCall | StandInCompletionCall;

/** A failure to inject instead of a reply. */
export interface StandInFault {
  /** HTTP status. @default 503 */
  status?: number;
  /** `Retry-After` in seconds. */
  retryAfterS?: number;
  /** Raw body instead of the default OpenAI error JSON (e.g. an HTML error page). */
  body?: string;
  /** Never answer (until the server closes): to test client timeouts. */
  hang?: boolean;
  /** Answer 200 with this non-JSON body. */
  garbage?: string;
}

/** Options of {@link StandInServer.start}. */
export interface StandInOptions {
  /** Model name reported by `/v1/models` and in replies. @default "stand-in" */
  model?: string;
  /** Produces the reply text. @default echo: `"echo: " + last user message` (completions: `" echo"`) */
  reply?: (call: StandInCall) => string | Promise<string>;
  /** Delay before answering, in ms (or per call). @default 0 */
  latencyMs?: number | ((call: StandInCall) => number);
  /** Log-probability of a token at a position (natural log, ≤ 0). @default a deterministic hash of the token */
  logprob?: (token: string, position: number, call: StandInCall) => number;
  /** Require `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** @default 0 (ephemeral) */
  port?: number;
}

/** One request the stand-in received. */
export interface StandInLogEntry {
  /** `performance.now()` at arrival. */
  t: number;
  path: string;
  hash: string;
  status: number;
}

/**
 * Splits text into tokens the way the stand-in counts them: each run of non-space characters with
 * the whitespace before it ("Hello", " world").
 */
export function standInTokens(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

function defaultLogprob(token: string): number {
  let h = 2166136261;
  for (let i = 0; i < token.length; i++) h = Math.imul(h ^ token.charCodeAt(i), 16777619);
  return -(((h >>> 0) % 1000) / 250) - 0.001;
}

/** A value of the shape a JSON schema describes (enough for tests of structured output). */
export function exampleForSchema(schema: unknown, seed: string): unknown {
  const s = (schema ?? {}) as Record<string, unknown>;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  if (s.const !== undefined) return s.const;
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      const props = (s.properties ?? {}) as Record<string, unknown>;
      for (const [k, v] of Object.entries(props)) out[k] = exampleForSchema(v, `${seed}.${k}`);
      return out;
    }
    case "array":
      return [exampleForSchema(s.items, `${seed}[0]`)];
    case "integer":
      return typeof s.minimum === "number" ? s.minimum : 1;
    case "number":
      return typeof s.minimum === "number" ? s.minimum : 1;
    case "boolean":
      return true;
    case "null":
      return null;
    default:
      return seed;
  }
}

/**
 * A small OpenAI-compatible server for tests and benchmarks: a real HTTP server on 127.0.0.1 and
 * an ephemeral port with deterministic replies, streaming, logprobs, configurable latency, 429s
 * and 5xx on demand, and a counter per request hash (the client's {@link requestHash} of the body).
 *
 * @example
 * const server = await StandInServer.start({ reply: (c) => c.kind === "chat" ? c.lastUser.toUpperCase() : "" });
 * const client = new OpenAIClient({ baseUrl: server.url, model: "stand-in" });
 * …
 * expect(server.completedCount(hash)).toBe(1);
 * await server.close();
 */
export class StandInServer {
  /** Base URL including `/v1`. */
  readonly url: string;
  readonly port: number;
  readonly model: string;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private replyFn: (call: StandInCall) => string | Promise<string>;
  private latency: number | ((call: StandInCall) => number);
  private logprobFn: (token: string, position: number, call: StandInCall) => number;
  private readonly apiKey: string | undefined;
  private faults: StandInFault[] = [];
  private faultWindow: { until: number; fault: StandInFault } | undefined;
  private readonly received = new Map<string, number>();
  private readonly completed = new Map<string, number>();
  private readonly hung = new Set<ServerResponse>();
  /** Every request in arrival order (kept only while {@link keepLog} is true). */
  readonly log: StandInLogEntry[] = [];
  /** Whether to record {@link log}. @default true */
  keepLog = true;
  /** `Authorization` header of the last request (tests of credential plumbing). */
  lastAuthorization: string | undefined;
  /** Requests received, completed (200 replies sent), and the most in flight at once. */
  readonly totals = { received: 0, completed: 0, faults: 0, inFlight: 0, maxInFlight: 0 };

  private constructor(server: Server, port: number, options: StandInOptions) {
    this.server = server;
    this.port = port;
    this.url = `http://127.0.0.1:${port}/v1`;
    this.model = options.model ?? "stand-in";
    this.replyFn = options.reply ?? defaultReply;
    this.latency = options.latencyMs ?? 0;
    this.logprobFn = options.logprob ?? ((t) => defaultLogprob(t));
    this.apiKey = options.apiKey;
  }

  /** Starts a server; resolves once it listens. */
  static async start(options: StandInOptions = {}): Promise<StandInServer> {
    const holder: { self?: StandInServer } = {};
    const server = createServer((req, res) => {
      void holder.self!.handle(req, res);
    });
    server.keepAliveTimeout = 60_000;
    server.headersTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const self = new StandInServer(server, port, options);
    holder.self = self;
    server.on("connection", (s) => {
      self.sockets.add(s);
      s.on("close", () => self.sockets.delete(s));
    });
    return self;
  }

  /** Stops listening and drops open connections (hung requests included). */
  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.hung.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Replaces the reply function. */
  setReply(reply: (call: StandInCall) => string | Promise<string>): void {
    this.replyFn = reply;
  }

  /** Replaces the latency. */
  setLatency(latencyMs: number | ((call: StandInCall) => number)): void {
    this.latency = latencyMs;
  }

  /** Replaces the log-probability function. */
  setLogprob(fn: (token: string, position: number, call: StandInCall) => number): void {
    this.logprobFn = fn;
  }

  /** Answers the next `count` requests with `fault` instead of a reply. */
  failNext(count: number, fault: StandInFault = {}): void {
    for (let i = 0; i < count; i++) this.faults.push(fault);
  }

  /** Answers every request for the next `ms` milliseconds with `fault` (a 429 storm, an outage). */
  failFor(ms: number, fault: StandInFault = {}): void {
    this.faultWindow = { until: performance.now() + ms, fault };
  }

  /** Drops pending faults. */
  clearFaults(): void {
    this.faults = [];
    this.faultWindow = undefined;
  }

  /** Requests received with this body (or hash), faults included. */
  requestCount(bodyOrHash: unknown): number {
    return this.received.get(typeof bodyOrHash === "string" ? bodyOrHash : requestHash(bodyOrHash)) ?? 0;
  }

  /** 200 replies sent for this body (or hash). */
  completedCount(bodyOrHash: unknown): number {
    return this.completed.get(typeof bodyOrHash === "string" ? bodyOrHash : requestHash(bodyOrHash)) ?? 0;
  }

  /** Completed replies per request hash. */
  completedByHash(): ReadonlyMap<string, number> {
    return this.completed;
  }

  /** Forgets counters, log and faults. */
  reset(): void {
    this.received.clear();
    this.completed.clear();
    this.log.length = 0;
    this.clearFaults();
    Object.assign(this.totals, { received: 0, completed: 0, faults: 0, maxInFlight: this.totals.inFlight });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t = performance.now();
    const url = req.url ?? "/";
    this.lastAuthorization = req.headers.authorization;
    const path = url.split("?")[0]!;
    if (this.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.apiKey}`) {
      return this.json(res, 401, { error: { message: "invalid api key", type: "invalid_request_error", code: "invalid_api_key" } });
    }
    // Any prefix ending in the OpenAI paths is served, so a gateway-style base URL
    // (`…/v1/gateway`) works too.
    const route = path.endsWith("/chat/completions") ? "/v1/chat/completions" : path.endsWith("/completions") ? "/v1/completions" : path;
    if (req.method === "GET" && path.endsWith("/models")) {
      return this.json(res, 200, { object: "list", data: [{ id: this.model, object: "model", owned_by: "nexa-stand-in" }] });
    }
    if (req.method === "GET" && path === "/healthz") return this.json(res, 200, { ok: true });
    if (req.method !== "POST" || (route !== "/v1/chat/completions" && route !== "/v1/completions")) {
      return this.json(res, 404, { error: { message: `no route ${req.method} ${path}`, type: "not_found" } });
    }
    let raw = "";
    req.setEncoding("utf8");
    for await (const chunk of req) raw += chunk as string;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error("not an object");
    } catch {
      return this.json(res, 400, { error: { message: "body is not a JSON object", type: "invalid_request_error" } });
    }
    const hash = requestHash(body);
    this.received.set(hash, (this.received.get(hash) ?? 0) + 1);
    this.totals.received++;
    this.totals.inFlight++;
    if (this.totals.inFlight > this.totals.maxInFlight) this.totals.maxInFlight = this.totals.inFlight;
    let status = 200;
    try {
      const call = this.callOf(route, body, hash);
      if (call === undefined) {
        status = 400;
        return this.json(res, 400, { error: { message: "messages (chat) or prompt (completions) is required", type: "invalid_request_error" } });
      }
      const delay = typeof this.latency === "function" ? this.latency(call) : this.latency;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const fault = this.nextFault();
      if (fault) {
        this.totals.faults++;
        status = fault.garbage !== undefined ? 200 : (fault.status ?? 503);
        return this.sendFault(res, fault);
      }
      const text = await this.replyFn(call);
      if (call.kind === "chat") {
        if (body.stream === true) this.streamChat(res, call, text);
        else this.json(res, 200, this.chatReply(call, text));
      } else this.json(res, 200, this.completionReply(call, text));
      this.completed.set(hash, (this.completed.get(hash) ?? 0) + 1);
      this.totals.completed++;
    } catch (e) {
      status = 500;
      if (!res.headersSent) this.json(res, 500, { error: { message: `stand-in reply failed: ${String(e)}`, type: "server_error" } });
    } finally {
      this.totals.inFlight--;
      if (this.keepLog) this.log.push({ t, path, hash, status });
    }
  }

  private callOf(path: string, body: Record<string, unknown>, hash: string): StandInCall | undefined {
    if (path === "/v1/chat/completions") {
      if (!Array.isArray(body.messages)) return undefined;
      const messages = body.messages as { role: string; content: unknown }[];
      let lastUser = "";
      for (let i = messages.length - 1; i >= 0; i--) {
        if (messages[i]?.role === "user") {
          lastUser = contentText(messages[i]!.content);
          break;
        }
      }
      return { kind: "chat", body: body as StandInChatCall["body"], lastUser, hash };
    }
    if (typeof body.prompt !== "string" && !Array.isArray(body.prompt)) return undefined;
    const prompt = Array.isArray(body.prompt) ? (body.prompt as unknown[]).map(String).join("") : (body.prompt as string);
    return { kind: "completion", body, prompt, hash };
  }

  private nextFault(): StandInFault | undefined {
    const f = this.faults.shift();
    if (f) return f;
    if (this.faultWindow) {
      if (performance.now() < this.faultWindow.until) return this.faultWindow.fault;
      this.faultWindow = undefined;
    }
    return undefined;
  }

  private sendFault(res: ServerResponse, f: StandInFault): void {
    if (f.hang) {
      this.hung.add(res);
      res.on("close", () => this.hung.delete(res));
      return;
    }
    if (f.garbage !== undefined) {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(f.garbage);
      return;
    }
    const status = f.status ?? 503;
    const headers: Record<string, string> = {};
    if (f.retryAfterS !== undefined) headers["retry-after"] = String(f.retryAfterS);
    if (f.body !== undefined) {
      res.writeHead(status, { "content-type": "text/html", ...headers });
      res.end(f.body);
      return;
    }
    const type = status === 429 ? "rate_limit_exceeded" : "server_error";
    this.json(res, status, { error: { message: `stand-in fault ${status}`, type, code: type } }, headers);
  }

  /** Applies `max_tokens` and `stop` to the reply's tokens. */
  private shape(call: StandInCall, text: string): { tokens: string[]; finish: string } {
    let finish = "stop";
    const stop = call.body.stop;
    const stops = typeof stop === "string" ? [stop] : Array.isArray(stop) ? (stop as string[]) : [];
    for (const s of stops) {
      const i = s ? text.indexOf(s) : -1;
      if (i >= 0) text = text.slice(0, i);
    }
    let tokens = standInTokens(text);
    const max = (call.body.max_tokens ?? call.body.max_completion_tokens) as number | undefined;
    if (typeof max === "number" && tokens.length > max) {
      tokens = tokens.slice(0, max);
      finish = "length";
    }
    return { tokens, finish };
  }

  private promptTokens(call: StandInCall): number {
    if (call.kind === "completion") return standInTokens(call.prompt).length;
    let n = 0;
    for (const m of call.body.messages) n += standInTokens(contentText(m.content)).length + 3;
    return n;
  }

  private tokenLogprobs(call: StandInCall, tokens: string[], offset: number, top: number) {
    return tokens.map((token, i) => {
      const logprob = this.logprobFn(token, offset + i, call);
      const bytes = [...Buffer.from(token, "utf8")];
      const tops = [{ token, logprob, bytes }];
      for (let k = 1; k < top; k++) {
        const alt = `${token}~${k}`;
        tops.push({ token: alt, logprob: logprob - k, bytes: [...Buffer.from(alt, "utf8")] });
      }
      return { token, logprob, bytes, top_logprobs: top > 0 ? tops : [] };
    });
  }

  private chatReply(call: StandInChatCall, text: string) {
    const { tokens, finish } = this.shape(call, text);
    const content = tokens.join("");
    const wantLogprobs = call.body.logprobs === true;
    const top = typeof call.body.top_logprobs === "number" ? call.body.top_logprobs : 0;
    const n = typeof call.body.n === "number" && call.body.n > 1 ? call.body.n : 1;
    const choice = (index: number) => ({
      index,
      message: { role: "assistant", content, refusal: null },
      logprobs: wantLogprobs ? { content: this.tokenLogprobs(call, tokens, 0, top), refusal: null } : null,
      finish_reason: finish,
    });
    const prompt = this.promptTokens(call);
    return {
      id: `chatcmpl-${call.hash.slice(0, 24)}`,
      object: "chat.completion",
      created: 1_700_000_000,
      model: typeof call.body.model === "string" ? call.body.model : this.model,
      choices: Array.from({ length: n }, (_, i) => choice(i)),
      usage: { prompt_tokens: prompt, completion_tokens: tokens.length * n, total_tokens: prompt + tokens.length * n },
      system_fingerprint: "stand-in",
    };
  }

  private streamChat(res: ServerResponse, call: StandInChatCall, text: string): void {
    const { tokens, finish } = this.shape(call, text);
    const wantLogprobs = call.body.logprobs === true;
    const top = typeof call.body.top_logprobs === "number" ? call.body.top_logprobs : 0;
    const includeUsage = (call.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const base = { id: `chatcmpl-${call.hash.slice(0, 24)}`, object: "chat.completion.chunk", created: 1_700_000_000, model: (call.body.model as string) ?? this.model };
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
    send({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }], ...(includeUsage ? { usage: null } : {}) });
    tokens.forEach((tok, i) => {
      send({
        ...base,
        choices: [{ index: 0, delta: { content: tok }, logprobs: wantLogprobs ? { content: this.tokenLogprobs(call, [tok], i, top) } : null, finish_reason: null }],
        ...(includeUsage ? { usage: null } : {}),
      });
    });
    send({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finish }], ...(includeUsage ? { usage: null } : {}) });
    if (includeUsage) {
      const prompt = this.promptTokens(call);
      send({ ...base, choices: [], usage: { prompt_tokens: prompt, completion_tokens: tokens.length, total_tokens: prompt + tokens.length } });
    }
    res.end("data: [DONE]\n\n");
  }

  private completionReply(call: StandInCompletionCall, text: string) {
    const { tokens, finish } = this.shape(call, text);
    const echo = call.body.echo === true;
    const promptToks = standInTokens(call.prompt);
    const all = echo ? [...promptToks, ...tokens] : tokens;
    const out = (echo ? call.prompt : "") + tokens.join("");
    let logprobs: unknown = null;
    if (typeof call.body.logprobs === "number") {
      const top = call.body.logprobs;
      const offsets: number[] = [];
      let pos = 0;
      for (const t of all) {
        offsets.push(pos);
        pos += t.length;
      }
      const lps = all.map((t, i) => this.logprobFn(t, i, call));
      logprobs = {
        tokens: all,
        // The first prompt token has no context, so servers report null for it.
        token_logprobs: lps.map((v, i) => (echo && i === 0 ? null : v)),
        top_logprobs: all.map((t, i) => (echo && i === 0 ? null : top > 0 ? { [t]: lps[i]! } : null)),
        text_offset: offsets,
      };
    }
    const prompt = promptToks.length;
    return {
      id: `cmpl-${call.hash.slice(0, 24)}`,
      object: "text_completion",
      created: 1_700_000_000,
      model: (call.body.model as string) ?? this.model,
      choices: [{ index: 0, text: out, logprobs, finish_reason: finish }],
      usage: { prompt_tokens: prompt, completion_tokens: tokens.length, total_tokens: prompt + tokens.length },
    };
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const s = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(s), ...headers });
    res.end(s);
  }
}

/**
 * The stand-in's default reply: `"echo: " + last user message`; for a JSON-schema response format,
 * an example value of the schema; for completions, `" echo"`.
 */
export function defaultReply(call: StandInCall): string {
  if (call.kind === "completion") return " echo";
  const rf = call.body.response_format as { type?: string; json_schema?: { schema?: unknown } } | undefined;
  if (rf?.type === "json_schema") return JSON.stringify(exampleForSchema(rf.json_schema?.schema, call.lastUser));
  if (rf?.type === "json_object") return JSON.stringify({ echo: call.lastUser });
  return `echo: ${call.lastUser}`;
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof (p as { text?: unknown }).text === "string" ? (p as { text: string }).text : "")).join("");
  return "";
}
