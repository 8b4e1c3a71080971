import { setTimeout as sleep } from "node:timers/promises";
import { type Dispatcher, Pool } from "undici";
import { LlmError } from "../errors.js";
import { RequestCache } from "./request-cache.js";
import { RetryPolicy, isRetryableStatus, parseRetryAfter } from "./retry-policy.js";
import { Semaphore } from "./semaphore.js";
import { sseData } from "./sse.js";
import { TokenBucket } from "./token-bucket.js";
import {
  ChatCompletion,
  ChatCompletionChunk,
  type ChatMessage,
  type ChatRequest,
  type CompletionRequest,
  type CompletionUsage,
  ErrorBody,
  TextCompletion,
  type TokenLogprob,
} from "./types.js";

/** What a user may pass to an {@link OpenAIClient}. */
export interface OpenAIClientOptions {
  /** Base URL up to and including `/v1`, e.g. `http://127.0.0.1:8001/v1`. */
  baseUrl: string;
  /** Model used when a request names none. */
  model?: string;
  /** Bearer token; resolve it from a named secret, never from a spec. */
  apiKey?: string;
  /** Requests in flight at once. @default 8 */
  maxConcurrency?: number;
  /** Request rate limit (token bucket, one second of burst). @default unlimited */
  requestsPerMinute?: number;
  /** Token rate limit, charged with an estimate before sending and trued up with the reply's usage. @default unlimited */
  tokensPerMinute?: number;
  /** Per-attempt timeout in milliseconds. @default 120000 */
  timeoutMs?: number;
  /** Retries after the first attempt. @default 5 */
  maxRetries?: number;
  /** First backoff ceiling in milliseconds. @default 500 */
  retryBaseDelayMs?: number;
  /** Largest backoff ceiling in milliseconds. @default 30000 */
  retryMaxDelayMs?: number;
  /** On-disk cache of replies (or its folder). @default none */
  cache?: RequestCache | string;
  /** Called with the usage of every reply received from the server (not for cache hits). */
  onUsage?: (usage: UsageRecord) => void;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Aborts every request of this client. */
  signal?: AbortSignal;
  /** HTTP dispatcher for the endpoint's origin. @default an undici Pool of maxConcurrency keep-alive connections */
  dispatcher?: Dispatcher;
  /** Random source for jitter, for tests. @default Math.random */
  random?: () => number;
}

/** Options with defaults applied. */
export interface ResolvedOpenAIClientOptions {
  baseUrl: string;
  model: string | undefined;
  maxConcurrency: number;
  requestsPerMinute: number | undefined;
  tokensPerMinute: number | undefined;
  timeoutMs: number;
  maxRetries: number;
}

/** Tokens one exchange used; `estimated` when the server reported none. */
export interface UsageRecord {
  prompt_tokens: number;
  completion_tokens: number;
  estimated: boolean;
  model: string;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Distinguishes otherwise identical requests in the cache (e.g. sample 2 of a prompt). */
  cacheSalt?: string;
  /** Skip the cache for this call (neither read nor write). */
  noCache?: boolean;
}

/** The result of {@link OpenAIClient.chat}. */
export interface ChatResult {
  /** Content of the first choice ("" when the model sent none). */
  text: string;
  response: ChatCompletion;
  usage: CompletionUsage | undefined;
  /** Token log-probabilities of the first choice, when requested and returned. */
  logprobs: TokenLogprob[] | undefined;
  finishReason: string | null;
  /** Whether the reply came from the request cache. */
  cached: boolean;
  /** Attempts the call took (0 for a cache hit). */
  attempts: number;
}

/** The result of {@link OpenAIClient.complete}. */
export interface CompletionResult {
  text: string;
  response: TextCompletion;
  usage: CompletionUsage | undefined;
  cached: boolean;
  attempts: number;
}

/** One streamed piece of a chat reply. */
export interface ChatStreamEvent {
  /** Text added by this chunk. */
  delta: string;
  chunk: ChatCompletionChunk;
  logprobs: TokenLogprob[] | undefined;
}

/** A rough token count (4 characters a token) used for rate limiting before the server counts. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function messagesText(messages: readonly ChatMessage[]): string {
  let s = "";
  for (const m of messages) s += typeof m.content === "string" ? m.content : JSON.stringify(m.content ?? "");
  return s;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isStrOrNull = (v: unknown) => v === null || typeof v === "string";

/**
 * The common reply (text choices, no logprobs or tool calls) checked by hand and completed with the
 * schema's defaults in place: the per-request hot path, where the full schema's allocations show.
 * Anything less plain returns undefined and goes through {@link ChatCompletion}.
 */
function plainChatCompletion(json: unknown): ChatCompletion | undefined {
  if (!isObj(json) || !Array.isArray(json.choices) || json.choices.length === 0) return undefined;
  if ((json.id !== undefined && typeof json.id !== "string") || (json.model !== undefined && typeof json.model !== "string")) return undefined;
  if (json.created !== undefined && typeof json.created !== "number") return undefined;
  for (const c of json.choices as unknown[]) {
    if (!isObj(c) || !isObj(c.message)) return undefined;
    const m = c.message;
    if (m.tool_calls !== undefined || (c.logprobs !== undefined && c.logprobs !== null)) return undefined;
    if (m.content !== undefined && !isStrOrNull(m.content)) return undefined;
    if (m.role !== undefined && typeof m.role !== "string") return undefined;
    if (m.refusal !== undefined && !isStrOrNull(m.refusal)) return undefined;
    if (c.index !== undefined && !Number.isInteger(c.index)) return undefined;
    if (c.finish_reason !== undefined && !isStrOrNull(c.finish_reason)) return undefined;
  }
  const u = json.usage;
  if (u !== undefined && u !== null) {
    if (!isObj(u)) return undefined;
    for (const k of ["prompt_tokens", "completion_tokens"] as const) {
      if (!(Number.isInteger(u[k]) && (u[k] as number) >= 0)) return undefined;
    }
    if (u.total_tokens !== undefined && !(Number.isInteger(u.total_tokens) && (u.total_tokens as number) >= 0)) return undefined;
  }
  for (const c of json.choices as Record<string, unknown>[]) {
    const m = c.message as Record<string, unknown>;
    m.role ??= "assistant";
    if (m.content === undefined) m.content = null;
    c.index ??= 0;
    if (c.finish_reason === undefined) c.finish_reason = null;
  }
  return json as ChatCompletion;
}

function validateChat(json: unknown): { value: ChatCompletion } | { error: string } {
  const fast = plainChatCompletion(json);
  if (fast) return { value: fast };
  const r = ChatCompletion.safeParse(json);
  if (!r.success) return { error: `not a chat completion: ${r.error.issues[0]?.message ?? "invalid"}` };
  return { value: r.data };
}

function validateCompletion(json: unknown): { value: TextCompletion } | { error: string } {
  const r = TextCompletion.safeParse(json);
  if (!r.success) return { error: `not a text completion: ${r.error.issues[0]?.message ?? "invalid"}` };
  return { value: r.data };
}

/** Estimated prompt tokens of a chat or completions body (when the server reports no usage). */
function promptEstimateOf(body: Record<string, unknown>): number {
  if (Array.isArray(body.messages)) return estimateTokens(messagesText(body.messages as ChatMessage[]));
  const p = body.prompt;
  return estimateTokens(Array.isArray(p) ? p.join("") : typeof p === "string" ? p : "");
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
}

/**
 * A client for OpenAI-compatible servers (OpenAI, vLLM, llama.cpp, Ollama, TGI, Forge's gateway):
 * chat completions and completions, SSE streaming, JSON-schema structured output, logprobs.
 * It bounds concurrency, keeps to request and token rate limits, retries timeouts, network errors,
 * 429 and 5xx with exponential backoff and jitter (honouring `Retry-After`, which also pauses the
 * whole client), and caches replies on disk by request hash so a resumed job never asks twice.
 *
 * @example
 * const client = new OpenAIClient({ baseUrl: "http://127.0.0.1:8001/v1", model: "qwen", maxConcurrency: 32 });
 * const { text } = await client.chat({ messages: [{ role: "user", content: "2+2?" }], temperature: 0 });
 */
export class OpenAIClient {
  readonly options: ResolvedOpenAIClientOptions;
  readonly cache: RequestCache | undefined;
  private readonly apiKey: string | undefined;
  private readonly headers: Record<string, string>;
  private readonly semaphore: Semaphore;
  private readonly rpm: TokenBucket | undefined;
  private readonly tpm: TokenBucket | undefined;
  private readonly retry: RetryPolicy;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly onUsage: ((u: UsageRecord) => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly origin: string;
  private readonly basePath: string;
  private pausedUntil = 0;
  private readonly inflight = new Map<string, Promise<unknown>>();
  /** Counters since construction. */
  readonly stats = { requests: 0, retries: 0, cacheHits: 0, failures: 0 };

  constructor(options: OpenAIClientOptions) {
    const url = new URL(options.baseUrl.replace(/\/+$/, ""));
    this.origin = url.origin;
    this.basePath = url.pathname === "/" ? "" : url.pathname;
    this.options = {
      baseUrl: `${url.origin}${this.basePath}`,
      model: options.model,
      maxConcurrency: options.maxConcurrency ?? 8,
      requestsPerMinute: options.requestsPerMinute,
      tokensPerMinute: options.tokensPerMinute,
      timeoutMs: options.timeoutMs ?? 120_000,
      maxRetries: options.maxRetries ?? 5,
    };
    this.apiKey = options.apiKey;
    this.headers = { "content-type": "application/json", accept: "application/json", ...(options.headers ?? {}) };
    if (this.apiKey) this.headers.authorization = `Bearer ${this.apiKey}`;
    this.semaphore = new Semaphore(this.options.maxConcurrency);
    this.rpm = options.requestsPerMinute ? new TokenBucket({ ratePerSecond: options.requestsPerMinute / 60 }) : undefined;
    this.tpm = options.tokensPerMinute ? new TokenBucket({ ratePerSecond: options.tokensPerMinute / 60 }) : undefined;
    this.retry = new RetryPolicy({
      maxRetries: this.options.maxRetries,
      ...(options.retryBaseDelayMs !== undefined ? { baseDelayMs: options.retryBaseDelayMs } : {}),
      ...(options.retryMaxDelayMs !== undefined ? { maxDelayMs: options.retryMaxDelayMs } : {}),
      ...(options.random ? { random: options.random } : {}),
    });
    this.cache = typeof options.cache === "string" ? new RequestCache(options.cache) : options.cache;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher =
      options.dispatcher ??
      new Pool(this.origin, { connections: this.options.maxConcurrency, pipelining: 1, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
    this.onUsage = options.onUsage;
    this.signal = options.signal;
  }

  /** Closes the connection pool (only one this client created). */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private model(requested: string | undefined): string {
    const m = requested ?? this.options.model;
    if (!m) throw new LlmError("invalid_response", `no model given for ${this.options.baseUrl}`, { endpoint: this.options.baseUrl });
    return m;
  }

  /**
   * `POST /chat/completions`. Temperature, seed and other sampling fields pass through as given.
   *
   * @example
   * const r = await client.chat({ messages: [{ role: "user", content: "hi" }], logprobs: true, top_logprobs: 2 });
   * r.logprobs?.[0]?.logprob
   */
  async chat(request: ChatRequest, call: CallOptions = {}): Promise<ChatResult> {
    // The request is never mutated, so one that names its model is sent as it is (no copy per call).
    const body = request.model !== undefined ? (request as ChatRequest & { model: string }) : { ...request, model: this.model(undefined) };
    // Only the token bucket needs an estimate before sending; without one, skip the text walk.
    const estimate = this.tpm ? estimateTokens(messagesText(body.messages)) + (body.max_tokens ?? body.max_completion_tokens ?? 256) : 0;
    const { value, cached, attempts } = await this.exchange<ChatCompletion>("/chat/completions", body, estimate, call, validateChat);
    const choice = value.choices[0]!;
    return {
      text: choice.message.content ?? "",
      response: value,
      usage: value.usage ?? undefined,
      logprobs: choice.logprobs?.content ?? undefined,
      finishReason: choice.finish_reason,
      cached,
      attempts,
    };
  }

  /**
   * `POST /completions` (prompt continuation; with `echo` and `logprobs`, the prompt's
   * log-probabilities, which multiple-choice scoring uses).
   */
  async complete(request: CompletionRequest, call: CallOptions = {}): Promise<CompletionResult> {
    const body = request.model !== undefined ? (request as CompletionRequest & { model: string }) : { ...request, model: this.model(undefined) };
    const estimate = this.tpm ? promptEstimateOf(body) + (body.max_tokens ?? 16) : 0;
    const { value, cached, attempts } = await this.exchange<TextCompletion>("/completions", body, estimate, call, validateCompletion);
    return { text: value.choices[0]!.text, response: value, usage: value.usage ?? undefined, cached, attempts };
  }

  /**
   * Streams `POST /chat/completions` with `stream: true` (server-sent events). Connection errors,
   * 429 and 5xx before the first event are retried; a stream that breaks midway fails (the
   * partial text is in the error's cause). Streams bypass the request cache.
   *
   * @example
   * for await (const ev of client.chatStream({ messages })) process.stdout.write(ev.delta);
   */
  async *chatStream(request: ChatRequest, call: CallOptions = {}): AsyncGenerator<ChatStreamEvent, ChatResult> {
    const body = { ...request, model: this.model(request.model), stream: true, stream_options: { include_usage: true } };
    const estimate = estimateTokens(messagesText(body.messages)) + (body.max_tokens ?? 256);
    const { res, release, attempts } = await this.openWithRetries("/chat/completions", body, estimate, call, true);
    let text = "";
    let usage: CompletionUsage | undefined;
    let finish: string | null = null;
    const logprobs: TokenLogprob[] = [];
    let last: ChatCompletionChunk | undefined;
    try {
      for await (const data of sseData(res.body)) {
        if (data === "[DONE]") break;
        let json: unknown;
        try {
          json = JSON.parse(data);
        } catch (e) {
          throw this.fail("invalid_response", `stream sent a non-JSON event: ${data.slice(0, 200)}`, body.model, res.status, attempts, false, e);
        }
        const err = looksLikeError(json) ? ErrorBody.safeParse(json) : undefined;
        if (err?.success) {
          throw this.fail("http_error", `stream error: ${errorMessage(err.data)}`, body.model, res.status, attempts, true);
        }
        const parsed = ChatCompletionChunk.safeParse(json);
        if (!parsed.success) throw this.fail("invalid_response", "stream sent a malformed chunk", body.model, res.status, attempts, false);
        const chunk = parsed.data;
        last = chunk;
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        const delta = choice.delta.content ?? "";
        text += delta;
        if (choice.finish_reason) finish = choice.finish_reason;
        const lp = choice.logprobs?.content ?? undefined;
        if (lp) logprobs.push(...lp);
        yield { delta, chunk, logprobs: lp };
      }
    } finally {
      release();
      // Drain or destroy the body so the connection is not leaked on an early exit.
      res.body.destroy();
    }
    this.recordUsage(body.model, usage, estimate, text, promptEstimateOf(body));
    const response: ChatCompletion = {
      id: last?.id,
      model: last?.model ?? body.model,
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: finish, logprobs: { content: logprobs.length ? logprobs : null } }],
      usage: usage ?? null,
    };
    return { text, response, usage, logprobs: logprobs.length ? logprobs : undefined, finishReason: finish, cached: false, attempts };
  }

  /** One JSON exchange with cache, single-flight de-duplication, limits and retries. */
  private async exchange<T>(
    path: string,
    body: Record<string, unknown> & { model: string },
    estimate: number,
    call: CallOptions,
    validate: (json: unknown) => { value: T } | { error: string },
  ): Promise<{ value: T; cached: boolean; attempts: number }> {
    if (this.cache === undefined || call.noCache) {
      const r = await this.sendJson(path, body, estimate, call, validate);
      return { value: r.value, cached: false, attempts: r.attempts };
    }
    const cache = this.cache;
    const key = RequestCache.key(this.options.baseUrl, path, body, call.cacheSalt);
    const hit = await cache.get(key);
    if (hit !== undefined) {
      const v = validate(hit);
      if ("value" in v) {
        this.stats.cacheHits++;
        return { value: v.value, cached: true, attempts: 0 };
      }
    }
    // Identical requests in flight at once are sent once.
    const pending = this.inflight.get(key);
    if (pending) {
      const r = (await pending) as { value: T; attempts: number };
      return { value: r.value, cached: true, attempts: 0 };
    }
    const run = (async () => {
      const r = await this.sendJson(path, body, estimate, call, validate);
      await cache.set(key, path, body, r.json);
      return r;
    })();
    this.inflight.set(key, run);
    try {
      const r = await run;
      return { value: r.value, cached: false, attempts: r.attempts };
    } finally {
      this.inflight.delete(key);
    }
  }

  private async sendJson<T>(
    path: string,
    body: Record<string, unknown> & { model: string },
    estimate: number,
    call: CallOptions,
    validate: (json: unknown) => { value: T } | { error: string },
  ): Promise<{ value: T; json: unknown; attempts: number }> {
    let attempt = 0;
    let lastStatus: number | undefined;
    for (;;) {
      attempt++;
      const { res, release } = await this.openOnce(path, body, estimate, call, false, attempt);
      let text: string;
      try {
        text = await res.body.text();
      } catch (e) {
        release();
        const err = this.classify(e, body.model, res.status, attempt, call);
        if (!err.retryable || attempt > this.retry.maxRetries) throw this.final(err, attempt);
        await this.backoff(attempt, undefined, call);
        continue;
      }
      release();
      lastStatus = res.status;
      let json: unknown;
      let problem: LlmError | undefined;
      try {
        json = JSON.parse(text);
      } catch (e) {
        problem = this.fail("invalid_response", `answered ${res.status} with a non-JSON body: ${text.slice(0, 200)}`, body.model, res.status, attempt, true, e);
      }
      if (!problem && res.status >= 200 && res.status < 300) {
        const err = looksLikeError(json) ? ErrorBody.safeParse(json) : undefined;
        if (err?.success) {
          problem = this.fail("http_error", `answered ${res.status} with an error body: ${errorMessage(err.data)}`, body.model, res.status, attempt, true);
        } else {
          const v = validate(json);
          if ("value" in v) {
            this.recordReplyUsage(body, json, estimate);
            return { value: v.value, json, attempts: attempt };
          }
          problem = this.fail("invalid_response", v.error, body.model, res.status, attempt, true);
        }
      }
      if (!problem) {
        const detail = ErrorBody.safeParse(json);
        const msg = detail.success ? errorMessage(detail.data) : text.slice(0, 200);
        problem = this.fail("http_error", `answered ${res.status}: ${msg}`, body.model, res.status, attempt, isRetryableStatus(res.status));
      }
      if (!problem.retryable || attempt > this.retry.maxRetries) throw this.final(problem, attempt, lastStatus);
      const ra = res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers) : undefined;
      await this.backoff(attempt, ra, call);
    }
  }

  /** Opens a request whose status is 2xx, retrying as the policy allows (for streams). */
  private async openWithRetries(
    path: string,
    body: Record<string, unknown> & { model: string },
    estimate: number,
    call: CallOptions,
    stream: boolean,
  ): Promise<{ res: RawResponse; release: () => void; attempts: number }> {
    let attempt = 0;
    for (;;) {
      attempt++;
      const { res, release } = await this.openOnce(path, body, estimate, call, stream, attempt);
      if (res.status >= 200 && res.status < 300) return { res, release, attempts: attempt };
      const text = await res.body.text().catch(() => "");
      release();
      let msg = text.slice(0, 200);
      try {
        const d = ErrorBody.safeParse(JSON.parse(text));
        if (d.success) msg = errorMessage(d.data);
      } catch {
        /* not JSON: keep the raw text */
      }
      const err = this.fail("http_error", `answered ${res.status}: ${msg}`, body.model, res.status, attempt, isRetryableStatus(res.status));
      if (!err.retryable || attempt > this.retry.maxRetries) throw this.final(err, attempt, res.status);
      await this.backoff(attempt, res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers) : undefined, call);
    }
  }

  /** One attempt's connection: waits for pause, rate limits and a slot; retries network errors itself. */
  private async openOnce(
    path: string,
    body: Record<string, unknown> & { model: string },
    estimate: number,
    call: CallOptions,
    stream: boolean,
    firstAttempt: number,
  ): Promise<{ res: RawResponse; release: () => void }> {
    let attempt = firstAttempt;
    for (;;) {
      const signal = this.combined(call.signal);
      // Each wait is awaited only when it may wait: an await per request per stage is measurable at c=256.
      if (this.pausedUntil > Date.now()) await this.waitPause(signal);
      if (this.rpm) await this.rpm.take(1, signal);
      if (this.tpm) await this.tpm.take(estimate, signal);
      signal?.throwIfAborted();
      const release = this.semaphore.tryAcquire() ?? (await this.semaphore.acquire(signal));
      this.stats.requests++;
      try {
        const res = await this.dispatcher.request({
          origin: this.origin,
          path: `${this.basePath}${path}`,
          method: "POST",
          headers: stream ? { ...this.headers, accept: "text/event-stream" } : this.headers,
          body: JSON.stringify(body),
          // Timeouts are undici's (time to headers, then idle time between body chunks): no timer
          // per request, and for streams the idle limit is the meaningful one.
          ...(signal ? { signal } : {}),
          headersTimeout: this.options.timeoutMs,
          bodyTimeout: this.options.timeoutMs,
        });
        return { res: { status: res.statusCode, headers: res.headers, body: res.body }, release };
      } catch (e) {
        release();
        const err = this.classify(e, body.model, undefined, attempt, call);
        if (!err.retryable || attempt > this.retry.maxRetries) throw this.final(err, attempt);
        await this.backoff(attempt, undefined, call);
        attempt++;
      }
    }
  }

  private combined(signal: AbortSignal | undefined): AbortSignal | undefined {
    if (signal && this.signal) return AbortSignal.any([signal, this.signal]);
    return signal ?? this.signal;
  }

  private async waitPause(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      const wait = this.pausedUntil - Date.now();
      if (wait <= 0) return;
      await sleep(wait, undefined, signal ? { signal } : undefined);
    }
  }

  private async backoff(attempt: number, retryAfterMs: number | undefined, call: CallOptions): Promise<void> {
    this.stats.retries++;
    const delay = this.retry.delayMs(attempt, retryAfterMs);
    // A server that says "retry after" is asking every request of ours to wait, not just this one.
    if (retryAfterMs !== undefined) this.pausedUntil = Math.max(this.pausedUntil, Date.now() + Math.min(retryAfterMs, this.retry.maxRetryAfterMs));
    const signal = this.combined(call.signal);
    try {
      await sleep(delay, undefined, signal ? { signal } : undefined);
    } catch (e) {
      throw this.fail("aborted", "aborted while waiting to retry", undefined, undefined, attempt, false, e);
    }
  }

  private classify(e: unknown, model: string, status: number | undefined, attempt: number, call: CallOptions): LlmError {
    const outer = this.combined(call.signal);
    if (outer?.aborted) return this.fail("aborted", "request aborted", model, status, attempt, false, e);
    const name = (e as { name?: string; code?: string } | null)?.name;
    const code = (e as { code?: string } | null)?.code;
    if (name === "TimeoutError" || name === "AbortError" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
      return this.fail("timeout", `timed out after ${this.options.timeoutMs} ms`, model, status, attempt, true, e);
    }
    const detail = e instanceof Error ? `${e.message}${code ? ` (${code})` : ""}` : String(e);
    return this.fail("network", `could not be reached: ${detail}`, model, status, attempt, true, e);
  }

  private fail(
    code: LlmError["code"],
    what: string,
    model: string | undefined,
    status: number | undefined,
    attempts: number,
    retryable: boolean,
    cause?: unknown,
  ): LlmError {
    return new LlmError(code, `${this.options.baseUrl} (model ${model ?? this.options.model ?? "?"}) ${what}`, {
      endpoint: this.options.baseUrl,
      ...(model !== undefined ? { model } : {}),
      ...(status !== undefined ? { status } : {}),
      attempts,
      retryable,
      cause,
    });
  }

  private final(err: LlmError, attempts: number, lastStatus?: number): LlmError {
    this.stats.failures++;
    if (err.code === "aborted") return err;
    const status = err.status ?? lastStatus;
    const tries = attempts > 1 ? ` after ${attempts} attempts` : "";
    const st = status !== undefined ? `; last status ${status}` : "; no HTTP status received";
    return new LlmError(err.code, `request failed${tries}: ${err.message}${st}`, {
      endpoint: err.endpoint ?? this.options.baseUrl,
      ...(err.model !== undefined ? { model: err.model } : {}),
      ...(status !== undefined ? { status } : {}),
      attempts,
      retryable: err.retryable,
      cause: err,
    });
  }

  /** {@link recordUsage} for a JSON reply; the text-based estimates are made only when the server sent no usage. */
  private recordReplyUsage(body: Record<string, unknown> & { model: string }, json: unknown, estimate: number): void {
    const usage = (json as { usage?: CompletionUsage | null }).usage ?? undefined;
    if (usage) this.recordUsage(body.model, usage, estimate, "");
    else this.recordUsage(body.model, undefined, estimate, extractText(json), promptEstimateOf(body));
  }

  private recordUsage(model: string, usage: CompletionUsage | undefined, estimate: number, completionText: string, promptEstimate?: number): void {
    let rec: UsageRecord;
    if (usage) rec = { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, estimated: false, model };
    else {
      const completion = estimateTokens(completionText);
      rec = { prompt_tokens: promptEstimate ?? estimate, completion_tokens: completion, estimated: true, model };
    }
    // True up the token bucket: it was charged the estimate before sending.
    if (this.tpm) this.tpm.adjust(rec.prompt_tokens + rec.completion_tokens - estimate);
    this.onUsage?.(rec);
  }
}

/** An object with `error` and without `choices`: an error body (some servers send them with 200). */
function looksLikeError(json: unknown): boolean {
  return json !== null && typeof json === "object" && "error" in json && !("choices" in json);
}

function errorMessage(e: ErrorBody): string {
  if (typeof e.error === "string") return e.error;
  return e.error.message ?? e.error.type ?? JSON.stringify(e.error);
}

type ErrorBody = import("zod").infer<typeof ErrorBody>;

function extractText(json: unknown): string {
  const c = (json as { choices?: { message?: { content?: unknown }; text?: unknown }[] }).choices?.[0];
  const t = c?.message?.content ?? c?.text;
  return typeof t === "string" ? t : "";
}
