import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import type { Storage } from "../../storage/storage.js";
import { planLimits } from "../plans/plan-limits.js";

export interface RetentionDeps {
  storage: Storage;
  clock: Clock;
  logger: Logger;
  /** Rows deleted per statement: small batches keep each write lock short. Default 1,000. */
  batchSize?: number;
}

/**
 * Deletes webhook logs (and, by cascade, their attempts) older than the owner's plan retention, counted
 * from creation. Runs hourly; deletes in bounded batches and yields between them so ingestion and
 * delivery keep their turn at the single SQLite writer.
 */
export function createRetentionService({ storage, clock, logger, batchSize = 1_000 }: RetentionDeps) {
  const { db } = storage;

  async function deleteInBatches(cutoffMs: number, freeUsersOnly: boolean, nowMs: number): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await db
        .deleteFrom("webhook_logs")
        .where("id", "in", (eb) => {
          let candidates = eb
            .selectFrom("webhook_logs")
            .select("webhook_logs.id")
            .where("webhook_logs.created_at", "<", cutoffMs);
          if (freeUsersOnly) {
            // Users on Free without a running trial; Pro and trialing users keep logs longer.
            candidates = candidates.where("webhook_logs.user_id", "in", (inner) =>
              inner
                .selectFrom("users")
                .select("users.id")
                .where("users.plan", "=", "free")
                .where((w) =>
                  w.or([w("users.trial_ends_at", "is", null), w("users.trial_ends_at", "<=", nowMs)]),
                ),
            );
          }
          return candidates.limit(batchSize);
        })
        .executeTakeFirst();
      const deleted = Number(result.numDeletedRows);
      total += deleted;
      if (deleted < batchSize) return total;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  return {
    async runOnce(): Promise<{ deleted: number }> {
      const now = clock.now();
      const longest = Math.max(...Object.values(planLimits).map((limits) => limits.logRetentionMs));
      let deleted = await deleteInBatches(now - longest, false, now);
      deleted += await deleteInBatches(now - planLimits.free.logRetentionMs, true, now);
      if (deleted > 0) logger.info({ deleted }, "retention: deleted expired webhook logs");
      return { deleted };
    },
  };
}

export type RetentionService = ReturnType<typeof createRetentionService>;
