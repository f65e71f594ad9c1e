import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import { writeSkippingDeleted } from "../../storage/skip-deleted.js";
import type { Storage } from "../../storage/storage.js";
import type { DeliveryOutcomeEvent } from "../delivery/delivery.service.js";
import type { EndpointDirectory } from "../endpoints/endpoint-directory.js";
import type { NotificationService } from "../notifications/notification.service.js";
import { evaluateAnomaly, HISTORY_HOURS } from "./anomaly.js";
import { emptyHistogram, latencyBucket, p95 } from "./latency-histogram.js";
import type { Granularity, StatsBucket, StatsStore } from "./stats-store.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const GRANULARITIES: readonly [Granularity, number][] = [
  ["hour", HOUR_MS],
  ["day", DAY_MS],
];

export interface StatsPoint {
  start: string;
  requests: number;
  successes: number;
  failures: number;
  failureRate: number | null;
  avgLatencyMs: number | null;
  p95LatencyMs: number | null;
}

function toPoint(bucket: StatsBucket): StatsPoint {
  return {
    start: new Date(bucket.bucketStart).toISOString(),
    requests: bucket.requests,
    successes: bucket.successes,
    failures: bucket.failures,
    failureRate: bucket.requests > 0 ? bucket.failures / bucket.requests : null,
    avgLatencyMs: bucket.requests > 0 ? Math.round(bucket.latencySumMs / bucket.requests) : null,
    p95LatencyMs: p95(bucket.latency),
  };
}

/** Sums buckets of the same start (several endpoints) into one. */
function merge(buckets: readonly StatsBucket[]): StatsBucket[] {
  const byStart = new Map<number, StatsBucket>();
  for (const bucket of buckets) {
    const into = byStart.get(bucket.bucketStart);
    if (!into) {
      byStart.set(bucket.bucketStart, { ...bucket, latency: [...bucket.latency] });
      continue;
    }
    into.requests += bucket.requests;
    into.successes += bucket.successes;
    into.failures += bucket.failures;
    into.latencySumMs += bucket.latencySumMs;
    bucket.latency.forEach((count, i) => {
      into.latency[i] = (into.latency[i] ?? 0) + count;
    });
  }
  return [...byStart.values()].sort((a, b) => a.bucketStart - b.bucketStart);
}

export interface StatsServiceDeps {
  storage: Storage;
  clock: Clock;
  logger: Logger;
  store: StatsStore;
  directory: EndpointDirectory;
  notifications: NotificationService;
  /**
   * How long outcomes collect in memory before they are written. One write per second instead of one per
   * burst of deliveries: at moderate rates the per-write cost (a query and a round trip) dominated. Shutdown
   * flushes; a crash loses at most this much of the statistics (never a webhook).
   */
  writeDelayMs?: number;
}

/**
 * Per-endpoint hourly and daily delivery statistics (every attempt counts as a request), the anomaly job
 * that reads them, and the REST views. Recording is batched: outcomes of concurrent deliveries become
 * one increment per endpoint and bucket.
 */
export function createStatsService({
  storage,
  clock,
  logger,
  store,
  directory,
  notifications,
  writeDelayMs = 1_000,
}: StatsServiceDeps) {
  // Outcomes are folded into in-memory buckets as they happen (no promise per delivery) and written in the
  // background every `writeDelayMs`, one increment per endpoint and bucket, one write at a time.
  let pending = new Map<string, StatsBucket>();
  let writing: Promise<void> | undefined;
  let scheduled = false;

  function add(event: DeliveryOutcomeEvent): void {
    for (const [granularity, size] of GRANULARITIES) {
      const bucketStart = event.atMs - (event.atMs % size);
      const key = `${event.endpointId}|${granularity}|${bucketStart}`;
      let bucket = pending.get(key);
      if (!bucket) {
        bucket = {
          endpointId: event.endpointId,
          userId: event.userId,
          granularity,
          bucketStart,
          requests: 0,
          successes: 0,
          failures: 0,
          latencySumMs: 0,
          latency: emptyHistogram(),
        };
        pending.set(key, bucket);
      }
      bucket.requests++;
      if (event.success) bucket.successes++;
      else bucket.failures++;
      bucket.latencySumMs += event.durationMs;
      const slot = latencyBucket(event.durationMs);
      bucket.latency[slot] = (bucket.latency[slot] ?? 0) + 1;
    }
  }

  function scheduleWrite(): void {
    if (scheduled || writing) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      void write();
    }, writeDelayMs).unref();
  }

  async function write(): Promise<void> {
    if (writing || pending.size === 0) return;
    const batch = [...pending.values()];
    pending = new Map();
    // An endpoint deleted while its attempts were counted leaves its buckets nothing to belong to; the other
    // endpoints' counts must not be lost with them.
    writing = writeSkippingDeleted(
      storage.db,
      "endpoints",
      (bucket) => bucket.endpointId,
      batch,
      (buckets) => store.add(buckets),
    )
      .then(() => {})
      .catch((error: unknown) =>
        logger.warn({ err: error, buckets: batch.length }, "writing delivery stats failed"),
      )
      .finally(() => {
        writing = undefined;
        if (pending.size > 0) scheduleWrite();
      });
    await writing;
  }

  async function ownedEndpointIds(userId: string): Promise<string[]> {
    const rows = await storage.db
      .selectFrom("endpoints")
      .select("id")
      .where("user_id", "=", userId)
      .execute();
    return rows.map((row) => row.id);
  }

  return {
    record(event: DeliveryOutcomeEvent): void {
      add(event);
      scheduleWrite();
    },

    /** Writes everything recorded so far. */
    async flush(): Promise<void> {
      while (writing || pending.size > 0) {
        if (writing) await writing;
        else await write();
      }
    },

    /** Hourly series of the last 48 hours plus the current one, and totals. */
    async endpointStats(endpointId: string) {
      const now = clock.now();
      const currentHour = now - (now % HOUR_MS);
      const hourly = await store.read(
        [endpointId],
        "hour",
        currentHour - HISTORY_HOURS * HOUR_MS,
        currentHour + HOUR_MS,
      );
      const [total] = merge(hourly.map((bucket) => ({ ...bucket, bucketStart: 0 })));
      return {
        hourly: hourly.map(toPoint),
        totals: total
          ? { ...toPoint(total), start: new Date(currentHour - HISTORY_HOURS * HOUR_MS).toISOString() }
          : null,
      };
    },

    /** The user's last 24 hours and a daily series of up to 90 days, over all their endpoints. */
    async userStats(userId: string) {
      const now = clock.now();
      const ids = await ownedEndpointIds(userId);
      const currentHour = now - (now % HOUR_MS);
      const today = now - (now % DAY_MS);
      const last24h = merge(
        (await store.read(ids, "hour", currentHour - 23 * HOUR_MS, currentHour + HOUR_MS)).map((b) => ({
          ...b,
          bucketStart: 0,
        })),
      );
      const daily = merge(await store.read(ids, "day", today - 89 * DAY_MS, today + DAY_MS));
      return {
        endpoints: ids.length,
        last24h: last24h[0]
          ? { ...toPoint(last24h[0]), start: new Date(currentHour - 23 * HOUR_MS).toISOString() }
          : null,
        daily: daily.map(toPoint),
      };
    },

    /** Runs every 10 minutes: one ANOMALY_DETECTED per endpoint and hour at most. */
    async detectAnomalies(): Promise<number> {
      const now = clock.now();
      const currentHour = now - (now % HOUR_MS);
      let fired = 0;
      for (const { endpointId, userId } of await store.activeEndpoints(currentHour)) {
        const buckets = await store.read(
          [endpointId],
          "hour",
          currentHour - HISTORY_HOURS * HOUR_MS,
          currentHour + HOUR_MS,
        );
        const current = buckets.find((bucket) => bucket.bucketStart === currentHour) ?? {
          requests: 0,
          failures: 0,
        };
        const history = buckets.filter((bucket) => bucket.bucketStart < currentHour);
        const verdict = evaluateAnomaly(history, current);
        if (!verdict.fire) continue;
        const endpoint = await directory.byId(endpointId);
        if (!endpoint) continue;
        const percent = Math.round(verdict.failureRate * 100);
        const created = await notifications.notify({
          userId,
          type: "ANOMALY_DETECTED",
          title: "Failure rate spike detected",
          message: `Endpoint '${endpoint.name}' failure rate spiked to ${percent}% (z-score: ${verdict.zScore.toFixed(1)})`,
          endpoint: { id: endpoint.id, slug: endpoint.slug },
          dedupeKey: `anomaly:${endpointId}:${currentHour}`,
        });
        if (created) fired++;
      }
      if (fired > 0) logger.info({ fired }, "anomaly alerts raised");
      return fired;
    },

    prune: () => store.prune(clock.now()),
  };
}

export type StatsService = ReturnType<typeof createStatsService>;
