import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import type { DeliveryQueue } from "../../queue/queue.js";
import type { Storage } from "../../storage/storage.js";

export interface ReconcilerDeps {
  storage: Storage;
  clock: Clock;
  queue: DeliveryQueue;
  logger: Logger;
  /** A log untouched this long in a waiting state is checked against the queue. Default 30 s. */
  staleAfterMs?: number;
  /** `delivering` longer than this means the worker died and the broker lost the job too. */
  deliveringStaleMs: number;
  batchSize?: number;
}

/**
 * The database is the source of truth: logs that should have a job (queued, due retries, deliveries
 * whose worker vanished) are enqueued again. Job id = log id, so a job that still exists is not
 * duplicated. Covers Redis losing data, an enqueue that failed after the commit, and resumed endpoints.
 */
export function createReconciler({
  storage,
  clock,
  queue,
  logger,
  staleAfterMs = 30_000,
  deliveringStaleMs,
  batchSize = 1_000,
}: ReconcilerDeps) {
  return {
    async runOnce(): Promise<{ enqueued: number }> {
      const now = clock.now();
      const rows = await storage.db
        .selectFrom("webhook_logs")
        .innerJoin("endpoints", "endpoints.id", "webhook_logs.endpoint_id")
        .select(["webhook_logs.id", "webhook_logs.endpoint_id", "webhook_logs.next_attempt_at"])
        .where("endpoints.is_paused", "=", 0)
        .where((eb) =>
          eb.or([
            eb.and([
              eb("webhook_logs.status", "=", "queued"),
              eb("webhook_logs.updated_at", "<=", now - staleAfterMs),
            ]),
            eb.and([
              eb("webhook_logs.status", "=", "retrying"),
              eb("webhook_logs.next_attempt_at", "<=", now - staleAfterMs),
            ]),
            eb.and([
              eb("webhook_logs.status", "=", "delivering"),
              eb("webhook_logs.updated_at", "<=", now - deliveringStaleMs),
            ]),
          ]),
        )
        .orderBy("webhook_logs.id")
        .limit(batchSize)
        .execute();
      if (rows.length === 0) return { enqueued: 0 };
      await queue.enqueue(rows.map((row) => ({ logId: row.id, endpointId: row.endpoint_id, runAtMs: now })));
      logger.info({ candidates: rows.length }, "reconciler: re-enqueued logs without a live job");
      return { enqueued: rows.length };
    },
  };
}
