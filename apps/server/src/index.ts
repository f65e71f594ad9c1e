export { buildApp } from "./app.js";
export { type Config, ConfigError, loadConfig } from "./config.js";
export { createDeps, type Deps, type DepsOverrides } from "./deps.js";
export { signWebhook, verifyWebhookSignature } from "./lib/crypto.js";
export { type RunningMitte, startMitte } from "./main.js";
export { createServices, type Services } from "./services.js";
export type { Plan } from "./storage/schema.js";
