import type { Endpoint } from "@nexa/core";
import { OpenAIClient, type UsageRecord } from "../client/openai-client.js";
import { LlmError } from "../errors.js";

/** How an {@link Endpoint} spec is turned into a client on this machine. */
export interface EndpointEnvironment {
  /** Resolves a named secret (`api_key_secret`); never logged. */
  secret?: ((name: string) => string | undefined) | undefined;
  /** Base URL of Forge's gateway (…/v1/gateway), for endpoints that name a deployment. */
  gatewayUrl?: string | undefined;
  /** Key for the gateway. */
  gatewayKey?: string | undefined;
  /** Request cache folder. */
  cacheDir?: string | undefined;
  onUsage?: ((u: UsageRecord) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Builds an {@link OpenAIClient} from an endpoint spec: the API key comes from the named secret on
 * this machine (a missing secret is an error that names it, never a silent anonymous call), a
 * deployment name goes through the gateway, and the spec's limits become the client's.
 *
 * @example
 * const client = createEndpointClient(spec.endpoint, { secret: (n) => process.env[n] });
 */
export function createEndpointClient(endpoint: Endpoint, env: EndpointEnvironment = {}): OpenAIClient {
  let baseUrl = endpoint.base_url;
  let apiKey: string | undefined;
  if (baseUrl === undefined) {
    if (!env.gatewayUrl) {
      throw new LlmError("network", `endpoint names deployment ${endpoint.deployment ?? "?"} but no gateway URL is known on this worker`, {
        model: endpoint.model,
      });
    }
    baseUrl = env.gatewayUrl;
    apiKey = env.gatewayKey;
  }
  if (endpoint.api_key_secret) {
    apiKey = env.secret?.(endpoint.api_key_secret);
    if (apiKey === undefined || apiKey === "") {
      throw new LlmError("http_error", `secret ${endpoint.api_key_secret} (api_key_secret of ${baseUrl}) is not set on this worker`, {
        endpoint: baseUrl,
        model: endpoint.model,
      });
    }
  }
  return new OpenAIClient({
    baseUrl,
    model: endpoint.deployment && endpoint.base_url === undefined ? endpoint.deployment : endpoint.model,
    ...(apiKey ? { apiKey } : {}),
    maxConcurrency: endpoint.max_concurrency,
    ...(endpoint.requests_per_minute ? { requestsPerMinute: endpoint.requests_per_minute } : {}),
    ...(endpoint.tokens_per_minute ? { tokensPerMinute: endpoint.tokens_per_minute } : {}),
    timeoutMs: endpoint.timeout_s * 1000,
    maxRetries: endpoint.max_retries,
    ...(env.cacheDir ? { cache: env.cacheDir } : {}),
    ...(env.onUsage ? { onUsage: env.onUsage } : {}),
    ...(env.signal ? { signal: env.signal } : {}),
  });
}
