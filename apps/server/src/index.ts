export { buildApp } from "./app.js";
export { type Config, ConfigError, loadConfig } from "./config.js";
export { createDeps, type Deps, type DepsOverrides } from "./deps.js";
// Building blocks that bench/bounds.ts measures on their own, outside a running Mitte.
export { BatchWriter } from "./lib/batch-writer.js";
export { systemClock } from "./lib/clock.js";
export { signWebhook, verifyWebhookSignature } from "./lib/crypto.js";
export { createIdGenerator } from "./lib/ids.js";
export { createOutboundHttp } from "./lib/outbound-http.js";
export { createAddressPolicy } from "./lib/ssrf-guard.js";
export { type RunningMitte, startMitte } from "./main.js";
export { createDeliveryRecorder } from "./modules/delivery/delivery-recorder.js";
export { forwardableHeaders } from "./modules/delivery/forward-headers.js";
export { LOG_COLUMNS, queuedLogRow } from "./modules/ingest/ingest.service.js";
export { createServices, type Services } from "./services.js";
export type { NewWebhookLog, Plan } from "./storage/schema.js";
export { openSqliteStorage, sqlitePragmas } from "./storage/sqlite/sqlite-storage.js";
export { SqliteThread } from "./storage/sqlite/sqlite-thread.js";
