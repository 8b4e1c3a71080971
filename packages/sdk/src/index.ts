/** @nexa/sdk — typed HTTP client for the Nexa Forge API v1. */
export { ForgeClient, parseNdjson, type ForgeClientOptions, type Page } from "./client.js";
