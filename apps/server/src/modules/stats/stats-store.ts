import type { Redis } from "ioredis";
import { type CompiledQuery, type Insertable, sql } from "kysely";
import type { EndpointStatsTable } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import { LATENCY_BUCKETS } from "./latency-histogram.js";

export type Granularity = "hour" | "day";

export interface StatsBucket {
  endpointId: string;
  userId: string;
  granularity: Granularity;
  bucketStart: number;
  requests: number;
  successes: number;
  failures: number;
  latencySumMs: number;
  /** Counts per latency bucket (LATENCY_BOUNDS_MS). */
  latency: number[];
}

/** How long each granularity is kept: the anomaly window needs 48 full hours plus the current one. */
export const RETAIN_MS: Record<Granularity, number> = { hour: 49 * 3_600_000, day: 90 * 86_400_000 };

/**
 * Port for delivery statistics. Embedded: a SQL table (SQLite). Scale: Redis hashes with expiry, as the
 * privacy policy describes ("Redis stats").
 */
export interface StatsStore {
  /** Adds the counts to the stored buckets (creating them). */
  add(buckets: readonly StatsBucket[]): Promise<void>;
  read(
    endpointIds: readonly string[],
    granularity: Granularity,
    fromMs: number,
    toMs: number,
  ): Promise<StatsBucket[]>;
  /** Endpoints with any delivery in the hour starting at `hourStart`. */
  activeEndpoints(hourStart: number): Promise<{ endpointId: string; userId: string }[]>;
  /** Deletes buckets older than their retention. */
  prune(nowMs: number): Promise<void>;
}

const latencyColumns = [
  "lat_0",
  "lat_1",
  "lat_2",
  "lat_3",
  "lat_4",
  "lat_5",
  "lat_6",
  "lat_7",
  "lat_8",
  "lat_9",
  "lat_10",
  "lat_11",
] as const satisfies readonly `lat_${number}`[] & { length: typeof LATENCY_BUCKETS };

export class SqlStatsStore implements StatsStore {
  constructor(private readonly storage: Storage) {}

  async add(buckets: readonly StatsBucket[]): Promise<void> {
    const { db } = this.storage;
    const increment = (column: string) =>
      sql<number>`${sql.ref(`endpoint_stats.${column}`)} + ${sql.ref(`excluded.${column}`)}`;
    const statements: CompiledQuery[] = buckets.map((bucket) => {
      const row = {
        endpoint_id: bucket.endpointId,
        granularity: bucket.granularity,
        bucket_start: bucket.bucketStart,
        user_id: bucket.userId,
        requests: bucket.requests,
        successes: bucket.successes,
        failures: bucket.failures,
        latency_sum_ms: bucket.latencySumMs,
        ...(Object.fromEntries(latencyColumns.map((column, i) => [column, bucket.latency[i] ?? 0])) as Record<
          (typeof latencyColumns)[number],
          number
        >),
      } satisfies Insertable<EndpointStatsTable>;
      return db
        .insertInto("endpoint_stats")
        .values(row)
        .onConflict((oc) =>
          oc.columns(["endpoint_id", "granularity", "bucket_start"]).doUpdateSet({
            requests: increment("requests"),
            successes: increment("successes"),
            failures: increment("failures"),
            latency_sum_ms: increment("latency_sum_ms"),
            ...Object.fromEntries(latencyColumns.map((column) => [column, increment(column)])),
          }),
        )
        .compile();
    });
    await this.storage.executeBatch(statements);
  }

  async read(
    endpointIds: readonly string[],
    granularity: Granularity,
    fromMs: number,
    toMs: number,
  ): Promise<StatsBucket[]> {
    if (endpointIds.length === 0) return [];
    const rows = await this.storage.db
      .selectFrom("endpoint_stats")
      .selectAll()
      .where("endpoint_id", "in", endpointIds)
      .where("granularity", "=", granularity)
      .where("bucket_start", ">=", fromMs)
      .where("bucket_start", "<", toMs)
      .orderBy("bucket_start")
      .execute();
    return rows.map((row) => ({
      endpointId: row.endpoint_id,
      userId: row.user_id,
      granularity: row.granularity,
      bucketStart: row.bucket_start,
      requests: row.requests,
      successes: row.successes,
      failures: row.failures,
      latencySumMs: Number(row.latency_sum_ms),
      latency: latencyColumns.map((column) => row[column]),
    }));
  }

  async activeEndpoints(hourStart: number): Promise<{ endpointId: string; userId: string }[]> {
    const rows = await this.storage.db
      .selectFrom("endpoint_stats")
      .select(["endpoint_id", "user_id"])
      .where("granularity", "=", "hour")
      .where("bucket_start", "=", hourStart)
      .execute();
    return rows.map((row) => ({ endpointId: row.endpoint_id, userId: row.user_id }));
  }

  async prune(nowMs: number): Promise<void> {
    for (const granularity of ["hour", "day"] as const) {
      await this.storage.db
        .deleteFrom("endpoint_stats")
        .where("granularity", "=", granularity)
        .where("bucket_start", "<", nowMs - RETAIN_MS[granularity])
        .execute();
    }
  }
}

export class RedisStatsStore implements StatsStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  #key(granularity: Granularity, endpointId: string, bucketStart: number): string {
    return `${this.prefix}:stats:${granularity}:${endpointId}:${bucketStart}`;
  }

  async add(buckets: readonly StatsBucket[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const bucket of buckets) {
      const key = this.#key(bucket.granularity, bucket.endpointId, bucket.bucketStart);
      pipeline.hset(key, "user", bucket.userId);
      pipeline.hincrby(key, "req", bucket.requests);
      pipeline.hincrby(key, "ok", bucket.successes);
      pipeline.hincrby(key, "fail", bucket.failures);
      pipeline.hincrby(key, "lat_sum", bucket.latencySumMs);
      bucket.latency.forEach((count, i) => {
        if (count > 0) pipeline.hincrby(key, `l${i}`, count);
      });
      // Expiry counts from the bucket's start, so it holds whatever clock the caller uses.
      pipeline.pexpire(key, RETAIN_MS[bucket.granularity] + 3_600_000);
      if (bucket.granularity === "hour") {
        const active = `${this.prefix}:stats:active:${bucket.bucketStart}`;
        pipeline.sadd(active, `${bucket.endpointId} ${bucket.userId}`);
        pipeline.pexpire(active, 3 * 3_600_000);
      }
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  async read(
    endpointIds: readonly string[],
    granularity: Granularity,
    fromMs: number,
    toMs: number,
  ): Promise<StatsBucket[]> {
    const step = granularity === "hour" ? 3_600_000 : 86_400_000;
    const wanted: { endpointId: string; bucketStart: number }[] = [];
    for (const endpointId of endpointIds) {
      for (let start = fromMs - (fromMs % step); start < toMs; start += step)
        if (start >= fromMs) wanted.push({ endpointId, bucketStart: start });
    }
    const pipeline = this.redis.pipeline();
    for (const { endpointId, bucketStart } of wanted)
      pipeline.hgetall(this.#key(granularity, endpointId, bucketStart));
    const results = (await pipeline.exec()) ?? [];
    const buckets: StatsBucket[] = [];
    wanted.forEach(({ endpointId, bucketStart }, i) => {
      const hash = (results[i]?.[1] ?? {}) as Record<string, string>;
      if (!hash.req) return;
      buckets.push({
        endpointId,
        userId: hash.user ?? "",
        granularity,
        bucketStart,
        requests: Number(hash.req),
        successes: Number(hash.ok ?? 0),
        failures: Number(hash.fail ?? 0),
        latencySumMs: Number(hash.lat_sum ?? 0),
        latency: Array.from({ length: LATENCY_BUCKETS }, (_, b) => Number(hash[`l${b}`] ?? 0)),
      });
    });
    return buckets.sort((a, b) => a.bucketStart - b.bucketStart);
  }

  async activeEndpoints(hourStart: number): Promise<{ endpointId: string; userId: string }[]> {
    const members = await this.redis.smembers(`${this.prefix}:stats:active:${hourStart}`);
    return members.map((member) => {
      const [endpointId = "", userId = ""] = member.split(" ");
      return { endpointId, userId };
    });
  }

  async prune(): Promise<void> {
    // Keys expire on their own.
  }
}
