export { Gateway, type GatewayEndpoint } from "./gateway.js";
export { gatewayRoutes, GatewayChatRequest, GatewayCompletionRequest } from "./routes.js";
export { resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from "./options.js";
export { GatewayError, type OpenAIErrorBody } from "./openai-error.js";
export { KeyLimits } from "./key-limits.js";
export { RequestRecorder, type GatewayRecord } from "./request-recorder.js";
export { TargetResolver, type Resolution, type Variant } from "./target-resolver.js";
export { pickVariant, stickyPoint } from "./variant.js";
