import { join } from "node:path";
import type { Config } from "./config.js";
import { type Clock, systemClock } from "./lib/clock.js";
import { createSecretBox, type SecretBox } from "./lib/crypto.js";
import { createIdGenerator, type IdGenerator } from "./lib/ids.js";
import { createLogger, type Logger } from "./lib/logger.js";
import { createOutboundHttp, type OutboundHttp } from "./lib/outbound-http.js";
import { loadOrCreateSecretKeyFile, parseSecretKey } from "./lib/secret-key.js";
import { createAddressPolicy } from "./lib/ssrf-guard.js";
import { EmbeddedDeliveryQueue } from "./queue/embedded/embedded-queue.js";
import type { DeliveryQueue } from "./queue/queue.js";
import { openSqliteStorage } from "./storage/sqlite/sqlite-storage.js";
import { migrateToLatest, type Storage } from "./storage/storage.js";

/** Everything feature code may use, built once by the composition root and handed down. */
export interface Deps {
  config: Config;
  clock: Clock;
  logger: Logger;
  newId: IdGenerator;
  random: () => number;
  storage: Storage;
  queue: DeliveryQueue;
  secretBox: SecretBox;
  outbound: OutboundHttp;
}

export type DepsOverrides = Partial<Omit<Deps, "config">>;

function resolveSecretKey(config: Config): Buffer {
  if (config.security.secretKey) return parseSecretKey(config.security.secretKey);
  if (config.storage.databaseUrl) {
    throw new Error("MITTE_SECRET_KEY is required with DATABASE_URL: every process must share one key.");
  }
  return loadOrCreateSecretKeyFile(config.storage.dataDir);
}

export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger(config.log.level);
  if (config.storage.databaseUrl && !overrides.storage) {
    throw new Error(
      "DATABASE_URL (PostgreSQL) is not supported yet; unset it to use the embedded SQLite store.",
    );
  }
  const storage =
    overrides.storage ??
    openSqliteStorage({
      filename: join(config.storage.dataDir, "mitte.db"),
      synchronous: config.storage.sqliteSynchronous,
    });
  await migrateToLatest(storage);
  const queue =
    overrides.queue ??
    new EmbeddedDeliveryQueue({
      db: storage.db,
      clock,
      logger,
      concurrency: config.delivery.concurrency,
      groupConcurrency: config.delivery.endpointConcurrency,
      // Longer than any attempt can take, so a live delivery is never claimed twice.
      leaseMs: config.delivery.timeoutMs * 2 + 30_000,
    });
  return {
    config,
    clock,
    logger,
    storage,
    queue,
    newId: overrides.newId ?? createIdGenerator(clock),
    random: overrides.random ?? Math.random,
    secretBox: overrides.secretBox ?? createSecretBox(resolveSecretKey(config)),
    outbound:
      overrides.outbound ??
      createOutboundHttp({ policy: createAddressPolicy(config.delivery.allowPrivateTargets) }),
  };
}
