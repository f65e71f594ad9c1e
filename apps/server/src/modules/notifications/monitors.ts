import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import type { Storage } from "../../storage/storage.js";
import type { DeliveryOutcomeEvent } from "../delivery/delivery.service.js";
import type { EndpointDirectory } from "../endpoints/endpoint-directory.js";
import { limitsFor, usagePeriod } from "../plans/plan-limits.js";
import type { FailureStreaks } from "./failure-streaks.js";
import type { NotificationService } from "./notification.service.js";

/** Documented: 5 consecutive failures raise ENDPOINT_DOWN; the counter resets on success or 1 h idle. */
export const ENDPOINT_DOWN_STREAK = 5;
export const STREAK_IDLE_RESET_MS = 60 * 60 * 1000;
/** TRIAL_ENDING goes out this long before the trial ends. */
export const TRIAL_ENDING_NOTICE_MS = 3 * 24 * 60 * 60 * 1000;

export interface MonitorDeps {
  storage: Storage;
  clock: Clock;
  logger: Logger;
  notifications: NotificationService;
  directory: EndpointDirectory;
  streaks: FailureStreaks;
}

export function createMonitors({ storage, clock, logger, notifications, directory, streaks }: MonitorDeps) {
  const { db } = storage;

  return {
    /** Called after every delivery attempt (test webhooks included: they are real deliveries). */
    /** Whether an outcome has monitor work: every failure, and a success that may end a streak. */
    wantsOutcome(event: DeliveryOutcomeEvent): boolean {
      return !event.success || streaks.mayHaveStreak(event.endpointId);
    },

    async onDeliveryOutcome(event: DeliveryOutcomeEvent): Promise<void> {
      if (event.success) {
        await streaks.reset(event.endpointId);
        return;
      }
      const streak = await streaks.increment(event.endpointId, event.atMs, STREAK_IDLE_RESET_MS);
      if (streak !== ENDPOINT_DOWN_STREAK) return;
      const endpoint = await directory.byId(event.endpointId);
      if (!endpoint) return;
      await notifications.notify({
        userId: event.userId,
        type: "ENDPOINT_DOWN",
        title: "Endpoint down",
        message: `Endpoint '${endpoint.name}' failed ${ENDPOINT_DOWN_STREAK} deliveries in a row (last: ${event.errorKind ?? "error"}${event.responseStatus ? ` ${event.responseStatus}` : ""}).`,
        endpoint: { id: endpoint.id, slug: endpoint.slug },
        // One alert per streak: a new streak starts after a success or an hour of silence.
        dedupeKey: `down:${endpoint.id}:${event.logId}:${event.attempt}`,
      });
    },

    /** QUOTA_WARNING once per user and month at 90 % of the plan's monthly requests. */
    async checkQuotas(): Promise<number> {
      const now = clock.now();
      const period = usagePeriod(now);
      const rows = await db
        .selectFrom("usage_counters")
        .innerJoin("users", "users.id", "usage_counters.user_id")
        .select(["users.id", "users.plan", "users.trial_ends_at", "usage_counters.request_count"])
        .where("usage_counters.period", "=", period)
        .where("usage_counters.request_count", ">=", 4_500)
        .execute();
      let sent = 0;
      for (const row of rows) {
        const limits = limitsFor(row, now);
        if (Number(row.request_count) < limits.quotaWarningRequests) continue;
        const created = await notifications.notify({
          userId: row.id,
          type: "QUOTA_WARNING",
          title: "90% of your monthly quota used",
          message: `You have used ${Number(row.request_count).toLocaleString("en")} of ${limits.monthlyRequests.toLocaleString("en")} webhook requests this month (${period}). At ${limits.monthlyRequests.toLocaleString("en")} new webhooks are refused until the month ends; upgrade or reduce traffic.`,
          dedupeKey: `quota:${row.id}:${period}`,
        });
        if (created) sent++;
      }
      return sent;
    },

    /** TRIAL_ENDING once, three days before the trial ends. */
    async checkTrials(): Promise<number> {
      const now = clock.now();
      const rows = await db
        .selectFrom("users")
        .select(["id", "trial_ends_at"])
        .where("plan", "=", "free")
        .where("trial_ends_at", ">", now)
        .where("trial_ends_at", "<=", now + TRIAL_ENDING_NOTICE_MS)
        .execute();
      let sent = 0;
      for (const row of rows) {
        const endsAt = new Date(row.trial_ends_at!).toISOString();
        const created = await notifications.notify({
          userId: row.id,
          type: "TRIAL_ENDING",
          title: "Your Pro trial ends soon",
          message: `Your 14-day Pro trial ends on ${endsAt}. After that your account moves to the Free plan (1 delivery attempt, 3-day log retention, 5,000 requests a month) unless you subscribe.`,
          dedupeKey: `trial:${row.id}:${row.trial_ends_at}`,
        });
        if (created) sent++;
      }
      if (sent > 0) logger.info({ sent }, "trial ending notifications sent");
      return sent;
    },
  };
}

export type Monitors = ReturnType<typeof createMonitors>;
