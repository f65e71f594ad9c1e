import type { IncomingHttpHeaders } from "node:http";
import { type CompiledQuery, sql } from "kysely";
import { BatchWriter } from "../../lib/batch-writer.js";
import type { Clock } from "../../lib/clock.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { CommittedJob, DeliveryQueue } from "../../queue/queue.js";
import { InsertTemplate, QueryTemplate } from "../../storage/query-template.js";
import type { NewWebhookLog } from "../../storage/schema.js";
import { writeSkippingDeleted } from "../../storage/skip-deleted.js";
import type { Storage } from "../../storage/storage.js";
import type { EndpointDirectory, EndpointSnapshot } from "../endpoints/endpoint-directory.js";
import { limitsFor, maxAttemptsFor, nextPeriodStartMs, usagePeriod } from "../plans/plan-limits.js";
import { moreRestrictive, type RateLimitDecision, type RateLimiter } from "./rate-limiter.js";
import { detectSource } from "./source-detection.js";
import type { UsageMeter } from "./usage-meter.js";

export interface IngestServiceDeps {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
  queue: DeliveryQueue;
  directory: EndpointDirectory;
  usage: UsageMeter;
  /** False while the queue's broker is unreachable: accepting then would promise what cannot be queued. */
  brokerReady: () => boolean;
  /** null when the operator turned a limiter off. */
  endpointLimiter: RateLimiter | null;
  ipLimiter: RateLimiter | null;
  /** Logs committed per transaction at most (group commit). */
  maxBatch?: number;
}

export type AdmitOutcome =
  | { outcome: "admitted"; endpoint: EndpointSnapshot; rateLimit: RateLimitDecision | null }
  | { outcome: "endpoint_not_found" }
  | { outcome: "unavailable" }
  | { outcome: "rate_limited"; decision: RateLimitDecision }
  | { outcome: "quota_exceeded"; retryAfterSeconds: number };

export type AcceptOutcome =
  | { outcome: "accepted"; logId: string }
  | { outcome: "endpoint_not_found" }
  | { outcome: "quota_exceeded"; retryAfterSeconds: number }
  | { outcome: "unavailable" };

export interface IncomingWebhook {
  method: string;
  /** Raw query string with its leading `?`, or "". */
  query: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The columns of a new log, in the order `accept` fills them. */
export const LOG_COLUMNS = [
  "id",
  "user_id",
  "endpoint_id",
  "method",
  "query",
  "request_headers",
  "request_body",
  "request_size",
  "source",
  "is_test",
  "status",
  "attempt_count",
  "max_attempts",
  "next_attempt_at",
  "response_status",
  "error_kind",
  "error_message",
  "duration_ms",
  "created_at",
  "updated_at",
  "completed_at",
] as const satisfies readonly (keyof NewWebhookLog)[];

/**
 * The log of a webhook just accepted: queued, no attempt yet, due at once. Its `next_attempt_at` makes it the
 * embedded queue's job (a log has one exactly while it still has an attempt to make).
 */
export function queuedLogRow(fields: {
  id: string;
  userId: string;
  endpointId: string;
  method: string;
  query: string;
  /** The request's headers as JSON. */
  requestHeaders: string;
  body: Buffer;
  source: string | null;
  isTest: boolean;
  maxAttempts: number;
  now: number;
}): NewWebhookLog {
  const { now } = fields;
  return {
    id: fields.id,
    user_id: fields.userId,
    endpoint_id: fields.endpointId,
    method: fields.method,
    query: fields.query,
    request_headers: fields.requestHeaders,
    request_body: fields.body,
    request_size: fields.body.length,
    source: fields.source,
    is_test: fields.isTest ? 1 : 0,
    status: "queued",
    attempt_count: 0,
    max_attempts: fields.maxAttempts,
    next_attempt_at: now,
    response_status: null,
    error_kind: null,
    error_message: null,
    duration_ms: null,
    created_at: now,
    updated_at: now,
    completed_at: null,
  };
}

interface PendingLog {
  row: NewWebhookLog;
  /** False for a paused endpoint: the log is stored without a job; resuming the endpoint enqueues it. */
  delivers: boolean;
  countsTowardQuota: boolean;
  /** The month its quota reservation was made in: the commit counts it there, even past midnight on the 1st. */
  period: string;
  /** Set by the commit: the endpoint was deleted after this webhook was admitted, so nothing was stored. */
  endpointGone?: boolean;
}

export function createIngestService(deps: IngestServiceDeps) {
  const { storage, clock, newId, queue, directory, usage } = deps;

  // 21 columns a row: 128 rows stay far below SQLite's bound-parameter limit.
  const logInserts = new InsertTemplate<NewWebhookLog>(
    (rows) => storage.db.insertInto("webhook_logs").values(rows),
    LOG_COLUMNS,
    128,
  );
  // One per user in each commit.
  const usageUpserts = new QueryTemplate<{ userId: string; period: string; count: number }>({
    build: ({ userId, period, count }) =>
      storage.db
        .insertInto("usage_counters")
        .values({ user_id: userId, period, request_count: count })
        .onConflict((oc) =>
          oc
            .columns(["user_id", "period"])
            .doUpdateSet({ request_count: sql`usage_counters.request_count + ${count}` }),
        ),
    shape: () => 0,
    parameters: ({ userId, period, count }) => [userId, period, count, count],
  });
  /** Jobs being handed to the queue after their logs committed; flush() waits for them. */
  const handovers = new Set<Promise<void>>();
  function commitStatements(items: readonly PendingLog[]): CompiledQuery[] {
    const statements: CompiledQuery[] = logInserts.compile(items.map((item) => item.row));
    const perUserAndPeriod = new Map<string, { userId: string; period: string; count: number }>();
    for (const item of items) {
      if (!item.countsTowardQuota) continue;
      const key = `${item.row.user_id}:${item.period}`;
      const entry = perUserAndPeriod.get(key);
      if (entry) entry.count += 1;
      else perUserAndPeriod.set(key, { userId: item.row.user_id, period: item.period, count: 1 });
    }
    for (const usage of perUserAndPeriod.values()) statements.push(usageUpserts.compile(usage));
    return statements;
  }

  const writer = new BatchWriter<PendingLog>(
    async (batch) => {
      // Logs and usage commit together, in one round trip (the committed log is the embedded queue's job).
      // They are new rows, and one usage upsert per user: independent statements, which PostgreSQL runs
      // as a single one. An endpoint (or its owner) deleted between admitting a webhook and this commit
      // refuses only that webhook; the rest of the batch, other endpoints' and other users', is written.
      const gone = await writeSkippingDeleted(
        storage.db,
        "endpoints",
        (item) => item.row.endpoint_id,
        batch,
        (items) => storage.executeBatch(commitStatements(items), { independent: true }),
      );
      for (const item of gone) item.endpointGone = true;
      const items = gone.length === 0 ? batch : batch.filter((item) => !item.endpointGone);
      const jobs = items.flatMap(({ row, delivers }): CommittedJob[] =>
        delivers ? [{ logId: row.id, endpointId: row.endpoint_id, runAtMs: row.created_at, log: row }] : [],
      );
      // Committed: the 202s need not wait for the broker. Should handing the jobs over fail, the logs
      // stay queued and the reconciler enqueues them (afterCommit logs that; it does not reject).
      const handover: Promise<void> = queue
        .afterCommit(jobs)
        .catch(() => {})
        .finally(() => handovers.delete(handover));
      handovers.add(handover);
    },
    // SQLite has one writer and runs batches one after another anyway: a second batch in flight only
    // waited behind the first, and split the waiting requests into two smaller commits (each commit
    // rewrites the last page of every index it touches). PostgreSQL commits concurrent transactions on
    // separate connections, so there batches overlap their commit round trips.
    { maxBatch: deps.maxBatch ?? 500, maxInFlight: storage.dialect === "postgres" ? 4 : 1 },
  );

  function quotaRetryAfterSeconds(nowMs: number): number {
    return Math.max(1, Math.ceil((nextPeriodStartMs(nowMs) - nowMs) / 1000));
  }

  return {
    /** Everything that can refuse a webhook before its body is read: unknown slug, rate limits, quota. */
    async admit(slug: string, clientIp: string): Promise<AdmitOutcome> {
      if (!deps.brokerReady()) return { outcome: "unavailable" };
      const endpoint = await directory.bySlug(slug);
      if (!endpoint) return { outcome: "endpoint_not_found" };
      const now = clock.now();
      let byEndpoint: RateLimitDecision | null;
      let byIp: RateLimitDecision | null;
      let used: number;
      try {
        [byEndpoint, byIp] = await Promise.all([
          deps.endpointLimiter?.hit(endpoint.slug, now) ?? null,
          deps.ipLimiter?.hit(clientIp, now) ?? null,
        ]);
        used = await usage.current(endpoint.userId, usagePeriod(now));
      } catch {
        // The shared counter store (Redis in scale mode) is unreachable: refuse now, the sender retries.
        return { outcome: "unavailable" };
      }
      const refused = [byEndpoint, byIp].find((decision) => decision && !decision.allowed);
      if (refused) return { outcome: "rate_limited", decision: refused };
      if (used >= limitsFor(endpoint.owner, now).monthlyRequests) {
        return { outcome: "quota_exceeded", retryAfterSeconds: quotaRetryAfterSeconds(now) };
      }
      return { outcome: "admitted", endpoint, rateLimit: moreRestrictive(byEndpoint, byIp) };
    },

    /**
     * Stores the webhook and its delivery job in one transaction, batched with concurrent requests.
     * Resolves only after the commit: a caller that answers 202 after this can never lose the webhook.
     */
    async accept(
      endpoint: EndpointSnapshot,
      webhook: IncomingWebhook,
      options: { isTest?: boolean } = {},
    ): Promise<AcceptOutcome> {
      const now = clock.now();
      const isTest = options.isTest ?? false;
      const limits = limitsFor(endpoint.owner, now);
      const period = usagePeriod(now);
      if (!isTest) {
        let reserved: boolean;
        try {
          reserved = await usage.tryReserve(endpoint.userId, period, limits.monthlyRequests);
        } catch {
          return { outcome: "unavailable" };
        }
        if (!reserved) return { outcome: "quota_exceeded", retryAfterSeconds: quotaRetryAfterSeconds(now) };
      }
      const id = newId("log");
      const row = queuedLogRow({
        id,
        userId: endpoint.userId,
        endpointId: endpoint.id,
        method: webhook.method,
        query: webhook.query,
        requestHeaders: JSON.stringify(webhook.headers),
        body: webhook.body,
        source: detectSource(webhook.headers, webhook.body),
        isTest,
        maxAttempts: maxAttemptsFor(limits, isTest),
        now,
      });
      const pending: PendingLog = { row, delivers: !endpoint.paused, countsTowardQuota: !isTest, period };
      try {
        await writer.submit(pending);
      } catch (error) {
        if (!isTest) usage.release(endpoint.userId, period);
        throw error;
      }
      if (pending.endpointGone) {
        if (!isTest) usage.release(endpoint.userId, period);
        return { outcome: "endpoint_not_found" };
      }
      return { outcome: "accepted", logId: id };
    },

    /** Waits for every accepted webhook to be committed and handed to the queue (shutdown, tests). */
    async flush(): Promise<void> {
      await writer.flush();
      await Promise.all(handovers);
    },
  };
}

export type IngestService = ReturnType<typeof createIngestService>;
