export { WorkerAgent, resolveWorkerAgentOptions, mediaTypeOf, type WorkerAgentOptions, type ResolvedWorkerAgentOptions } from "./agent.js";
export { JobFailure, type AbortReason, type Handler, type HandlerContext, type HandlerResult, type JobFailureOptions } from "./handler.js";
export { builtinHandlers, commandHandler, processEnv, type HandlerRegistry } from "./handlers/index.js";
export { discoverGpus, parseNvidiaSmi, type DiscoverGpusOptions, type DiscoveredGpu, type GpuOption } from "./gpu.js";
export { DigestCache, hashFile, type BlobApi, type ResolvedRef } from "./cache.js";
export { ProcessSupervisor, type ProcessExit, type SuperviseOptions } from "./supervisor.js";
export { CheckpointUploader, restoreLatestCheckpoint, listCheckpoints, checkpointArtifactName, COMPLETE_MARKER } from "./checkpoints.js";
export { DeploymentSupervisor, DeploymentError, deployments } from "./deployments.js";
export { trainHandler, deployHandler } from "./handlers/index.js";
