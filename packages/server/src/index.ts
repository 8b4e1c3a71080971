/**
 * @nexa/server — the Nexa Forge control plane: HTTP API v1, store (SQLite or PostgreSQL),
 * durable queue, blob store, usage and metrics.
 */
export { startServer, readCredentials, type RunningServer, type ServerExtensions, type Credentials } from "./server.js";
export { resolveServerOptions, defaultHome, loadPrices, type ServerOptions, type ResolvedServerOptions } from "./config.js";
export { openBackend, migrate, MIGRATION_NAMES, type Backend, type Database, type Dialect, type MigrateResult } from "./store/index.js";
export { Queue, type QueueObserver, type QueueTiming } from "./queue.js";
export { Bus, type BusEvent } from "./bus.js";
export { Keys, RateLimiter, generateKey, hashKey, type Principal } from "./auth.js";
export { FileBlobStore } from "./blobs/file-blob-store.js";
export { buildApp, FORGE_VERSION, type RouteGroup } from "./http/app.js";
export type { AppContext } from "./http/context.js";
export { route, ROUTES, type RouteDef, type RouteArgs } from "./http/route.js";
export { openApiDocument } from "./http/openapi.js";
export { newId } from "./ids.js";
export { WorkflowEngine } from "./workflows/engine.js";
export { Gateway, gatewayRoutes, type GatewayOptions, type ResolvedGatewayOptions } from "./gateway/index.js";
