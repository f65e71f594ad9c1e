import { join } from "node:path";
import { Redis } from "ioredis";
import { type Config, ConfigError } from "./config.js";
import { type Clock, systemClock } from "./lib/clock.js";
import { createSecretBox, type SecretBox } from "./lib/crypto.js";
import { createIdGenerator, type IdGenerator } from "./lib/ids.js";
import { createLogger, type Logger } from "./lib/logger.js";
import { type Mailer, OutboxMailer, ResendMailer } from "./lib/mailer.js";
import { createOutboundHttp, type OutboundHttp } from "./lib/outbound-http.js";
import { type PubSub, RedisPubSub } from "./lib/pubsub.js";
import { loadOrCreateSecretKeyFile, parseSecretKey } from "./lib/secret-key.js";
import { type AddressPolicy, createAddressPolicy } from "./lib/ssrf-guard.js";
import { withoutCredentials } from "./lib/url-credentials.js";
import { MemoryRateLimiter, type RateLimiter } from "./modules/ingest/rate-limiter.js";
import { RedisRateLimiter } from "./modules/ingest/redis-rate-limiter.js";
import { RedisUsageMeter } from "./modules/ingest/redis-usage-meter.js";
import { EmbeddedUsageMeter, type UsageMeter } from "./modules/ingest/usage-meter.js";
import {
  type FailureStreaks,
  MemoryFailureStreaks,
  RedisFailureStreaks,
} from "./modules/notifications/failure-streaks.js";
import { RedisStatsStore, SqlStatsStore, type StatsStore } from "./modules/stats/stats-store.js";
import { BullmqDeliveryQueue } from "./queue/bullmq/bullmq-queue.js";
import { EmbeddedDeliveryQueue } from "./queue/embedded/embedded-queue.js";
import { BullmqPeriodicJobs, type PeriodicJobs, TimerPeriodicJobs } from "./queue/periodic.js";
import type { DeliveryQueue } from "./queue/queue.js";
import { openPostgresStorage } from "./storage/postgres/postgres-storage.js";
import { openSqliteStorage } from "./storage/sqlite/sqlite-storage.js";
import { migrateToLatest, type Storage } from "./storage/storage.js";

export type Mode = "embedded" | "scale";

/** Everything feature code may use, built once by the composition root and handed down. */
export interface Deps {
  config: Config;
  mode: Mode;
  clock: Clock;
  logger: Logger;
  newId: IdGenerator;
  random: () => number;
  storage: Storage;
  queue: DeliveryQueue;
  periodic: PeriodicJobs;
  /** Cross-process messages; absent in embedded mode, where there is one process. */
  pubsub: PubSub | undefined;
  usage: UsageMeter;
  createRateLimiter(scope: string, limit: number, windowMs: number, blockMs: number): RateLimiter;
  /** Redis answers (scale mode) — ingestion refuses with 503 rather than accept what it cannot queue. */
  brokerReady(): boolean;
  secretBox: SecretBox;
  outbound: OutboundHttp;
  mailer: Mailer;
  /** The SSRF guard's address rules (outbound delivery and notification webhooks). */
  addressPolicy: AddressPolicy;
  failureStreaks: FailureStreaks;
  statsStore: StatsStore;
  /**
   * Closes every adapter in dependency order. `afterQueue` runs once the queue stopped (no handler runs
   * any more) and before storage closes: the place to flush buffered writes.
   */
  close(options?: {
    graceMs?: number;
    onGraceEnd?: () => void;
    afterQueue?: () => Promise<void>;
  }): Promise<void>;
}

export type DepsOverrides = Partial<
  Pick<
    Deps,
    "clock" | "logger" | "newId" | "random" | "storage" | "queue" | "secretBox" | "outbound" | "mailer"
  >
>;

function resolveSecretKey(config: Config): Buffer {
  if (config.security.secretKey) return parseSecretKey(config.security.secretKey);
  if (config.storage.databaseUrl) {
    throw new Error("MITTE_SECRET_KEY is required with DATABASE_URL: every process must share one key.");
  }
  return loadOrCreateSecretKeyFile(config.storage.dataDir);
}

/**
 * Started with a key other than the one that sealed the stored signing secrets (MITTE_SECRET_KEY changed,
 * or the data directory moved without its secret.key), Mitte would run and answer every webhook with a 500:
 * no endpoint's secret opens. One sealed secret tells, so refuse to start instead.
 */
async function assertKeyOpensStoredSecrets(
  storage: Storage,
  secretBox: SecretBox,
  config: Config,
): Promise<void> {
  const row = await storage.db
    .selectFrom("endpoints")
    .select("signing_secret_sealed")
    .where("signing_secret_sealed", "is not", null)
    .limit(1)
    .executeTakeFirst();
  if (!row?.signing_secret_sealed) return;
  try {
    secretBox.open(row.signing_secret_sealed);
  } catch {
    const source = config.security.secretKey
      ? "MITTE_SECRET_KEY"
      : `the key file ${join(config.storage.dataDir, "secret.key")}`;
    throw new ConfigError(
      `${source} does not open the signing secrets stored in this database: start with the key it was created with (MITTE_SECRET_KEY, or the secret.key kept beside the database).`,
    );
  }
}

/** Resolves once the connection is ready, or rejects after `timeoutMs` with a clear message. */
async function connected(redis: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`Redis at ${withoutCredentials(url)} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    redis.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger(config.log.level);
  const { databaseUrl } = config.storage;
  const { redisUrl, redisPrefix } = config.queue;
  // Before the database: a missing or malformed key refuses the start without creating tables first.
  const secretBox = overrides.secretBox ?? createSecretBox(resolveSecretKey(config));
  const storage =
    overrides.storage ??
    (databaseUrl
      ? openPostgresStorage({
          connectionString: databaseUrl,
          poolSize: config.storage.pgPoolSize,
          schema: config.storage.pgSchema,
          logger,
          // Names the deployment and role in pg_stat_activity.
          applicationName: `${redisPrefix}-${config.role}`,
        })
      : openSqliteStorage({
          filename: join(config.storage.dataDir, "mitte.db"),
          synchronous: config.storage.sqliteSynchronous,
        }));
  await migrateToLatest(storage);
  storage.check?.(); // pins the SQLite file's identity for /readyz
  const addressPolicy = createAddressPolicy(config.delivery.allowPrivateTargets);
  const outbound = overrides.outbound ?? createOutboundHttp({ policy: addressPolicy });
  const newId = overrides.newId ?? createIdGenerator(clock);
  const { resendApiKey, resendBaseUrl, from } = config.mail;
  const mailer =
    overrides.mailer ??
    (resendApiKey
      ? new ResendMailer(resendApiKey, from, resendBaseUrl)
      : new OutboxMailer(storage.db, clock, newId, logger));
  try {
    await assertKeyOpensStoredSecrets(storage, secretBox, config);
  } catch (error) {
    await storage.close();
    throw error;
  }
  const common = {
    config,
    clock,
    logger,
    storage,
    outbound,
    mailer,
    addressPolicy,
    newId,
    random: overrides.random ?? Math.random,
    secretBox,
  };
  if (!redisUrl) {
    if (storage.dialect !== "sqlite") throw new Error("PostgreSQL storage needs REDIS_URL (scale mode).");
    const queue =
      overrides.queue ??
      new EmbeddedDeliveryQueue({
        db: storage.db,
        storage,
        clock,
        logger,
        concurrency: config.delivery.concurrency,
        groupConcurrency: config.delivery.endpointConcurrency,
      });
    const periodic = new TimerPeriodicJobs(logger);
    return {
      ...common,
      mode: "embedded",
      queue,
      periodic,
      pubsub: undefined,
      failureStreaks: new MemoryFailureStreaks(),
      statsStore: new SqlStatsStore(storage),
      usage: new EmbeddedUsageMeter(storage),
      createRateLimiter: (_scope, limit, windowMs, blockMs) =>
        new MemoryRateLimiter(limit, windowMs, blockMs),
      brokerReady: () => true,
      async close({ graceMs, onGraceEnd, afterQueue } = {}) {
        await periodic.close();
        await queue.close(graceMs, onGraceEnd);
        await afterQueue?.();
        await outbound.close();
        await storage.close();
      },
    };
  }

  if (storage.dialect !== "postgres")
    throw new Error("REDIS_URL (scale mode) needs DATABASE_URL (PostgreSQL).");
  // Producer side fails fast while Redis is away, so ingestion can answer 503 at once instead of hanging.
  const redis = new Redis(redisUrl, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectionName: `mitte-${config.role}`,
  });
  redis.on("error", (error) => logger.debug({ err: error }, "redis connection error"));
  // Mitte's own counters (usage, rate limits, streaks, stats, live events) on a second connection with
  // auto-pipelining: the commands of one event-loop turn leave in one write instead of one syscall each.
  // BullMQ keeps its connections without it (reports of lost job data with auto-pipelining, bull #2276).
  const counters = redis.duplicate({
    enableAutoPipelining: true,
    connectionName: `mitte-${config.role}-counters`,
  });
  counters.on("error", (error) => logger.debug({ err: error }, "redis counters connection error"));
  await Promise.all([connected(redis, redisUrl), connected(counters, redisUrl)]);
  const workerConnections: Redis[] = [];
  const createWorkerConnection = () => {
    const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    connection.on("error", (error) => logger.debug({ err: error }, "redis worker connection error"));
    workerConnections.push(connection);
    return connection;
  };
  const subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  subscriber.on("error", (error) => logger.debug({ err: error }, "redis subscriber error"));
  const pubsub = new RedisPubSub(counters, subscriber, redisPrefix);
  const queue =
    overrides.queue ??
    new BullmqDeliveryQueue({
      connection: redis,
      createWorkerConnection,
      prefix: redisPrefix,
      clock,
      logger,
      concurrency: config.delivery.concurrency,
      groupConcurrency: config.delivery.endpointConcurrency,
      lockDurationMs: config.delivery.timeoutMs + 10_000,
    });
  const periodic = new BullmqPeriodicJobs(redis, createWorkerConnection, redisPrefix, logger);
  const usage = new RedisUsageMeter(counters, storage, redisPrefix);
  return {
    ...common,
    mode: "scale",
    queue,
    periodic,
    pubsub,
    failureStreaks: new RedisFailureStreaks(counters, redisPrefix),
    statsStore: new RedisStatsStore(counters, redisPrefix),
    usage,
    createRateLimiter: (scope, limit, windowMs, blockMs) =>
      new RedisRateLimiter(counters, `${redisPrefix}:rl:${scope}`, limit, windowMs, blockMs),
    brokerReady: () => redis.status === "ready" && counters.status === "ready",
    async close({ graceMs, onGraceEnd, afterQueue } = {}) {
      await periodic.close();
      await queue.close(graceMs, onGraceEnd);
      await afterQueue?.();
      await usage.close();
      await pubsub.close();
      await outbound.close();
      await storage.close();
      for (const connection of workerConnections) connection.disconnect();
      counters.disconnect();
      redis.disconnect();
    },
  };
}
