import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import { deleteInBatches } from "../../storage/delete-in-batches.js";
import type { Storage } from "../../storage/storage.js";
import { planLimits } from "../plans/plan-limits.js";

const EXPIRED_LINK_KEPT_MS = 7 * 24 * 60 * 60 * 1000;

export interface RetentionDeps {
  storage: Storage;
  clock: Clock;
  logger: Logger;
  /** Rows deleted per statement: small batches keep each write lock short. Default 1,000. */
  batchSize?: number;
}

/**
 * Deletes finished webhook logs (and, by cascade, their attempts) older than the owner's plan retention,
 * counted from creation, and expired sessions, sign-in states and mail links. Runs hourly; deletes in bounded batches and yields between them so ingestion and
 * delivery keep their turn at the single SQLite writer.
 */
export function createRetentionService({ storage, clock, logger, batchSize = 1_000 }: RetentionDeps) {
  const { db } = storage;

  const inBatches = (deleteBatch: () => Promise<{ numDeletedRows: bigint }>) =>
    deleteInBatches(batchSize, deleteBatch);

  function deleteExpiredLogs(cutoffMs: number, freeUsersOnly: boolean, nowMs: number): Promise<number> {
    return inBatches(() =>
      db
        .deleteFrom("webhook_logs")
        .where("id", "in", (eb) => {
          // Only finished logs: one still queued or retrying (a paused endpoint's, say) was accepted with a
          // 202 and is delivered when it can be; age alone must not throw it away.
          let candidates = eb
            .selectFrom("webhook_logs")
            .select("webhook_logs.id")
            .where("webhook_logs.created_at", "<", cutoffMs)
            .where("webhook_logs.status", "in", ["delivered", "failed"]);
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
        .executeTakeFirstOrThrow(),
    );
  }

  /** Deletes rows of `table` whose `column` is at or before `cutoffMs`, in bounded batches. */
  function purgeUpTo(
    table: "sessions" | "one_time_tokens" | "oauth_states" | "mail_outbox",
    key: "id" | "state_hash",
    column: "expires_at" | "created_at",
    cutoffMs: number,
  ): Promise<number> {
    return inBatches(() =>
      db
        .deleteFrom(table)
        .where(key, "in", (eb) =>
          eb.selectFrom(table).select(key).where(column, "<=", cutoffMs).limit(batchSize),
        )
        .executeTakeFirstOrThrow(),
    );
  }

  return {
    async runOnce(): Promise<{ deleted: number; credentials: number; mails: number }> {
      const now = clock.now();
      const longest = Math.max(...Object.values(planLimits).map((limits) => limits.logRetentionMs));
      let deleted = await deleteExpiredLogs(now - longest, false, now);
      deleted += await deleteExpiredLogs(now - planLimits.free.logRetentionMs, true, now);
      if (deleted > 0) logger.info({ deleted }, "retention: deleted expired webhook logs");
      // Expired sign-in state is dead weight (and /oauth/*/start adds a row per anonymous call). Mail links
      // are kept a week past expiry so a late click still hears "expired" rather than "invalid".
      const credentials =
        (await purgeUpTo("sessions", "id", "expires_at", now)) +
        (await purgeUpTo("oauth_states", "state_hash", "expires_at", now)) +
        (await purgeUpTo("one_time_tokens", "id", "expires_at", now - EXPIRED_LINK_KEPT_MS));
      // The dev outbox (no mail provider): its copies of mail, addresses and links included, for a week.
      const mails = await purgeUpTo("mail_outbox", "id", "created_at", now - EXPIRED_LINK_KEPT_MS);
      if (credentials + mails > 0)
        logger.info({ credentials, mails }, "retention: deleted expired sessions, links and outbox mail");
      return { deleted, credentials, mails };
    },
  };
}

export type RetentionService = ReturnType<typeof createRetentionService>;
