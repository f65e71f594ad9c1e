import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { Mailer } from "../../lib/mailer.js";
import type { OutboundHttp } from "../../lib/outbound-http.js";
import { toPage } from "../../lib/pagination.js";
import type { NotificationType } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import type { EventHub } from "../events/event-hub.js";

export interface NotificationView {
  id: string;
  type: NotificationType;
  title: string;
  message: string;
  endpointId: string | null;
  endpointSlug: string | null;
  read: boolean;
  createdAt: string;
}

export interface PreferencesView {
  emailEnabled: boolean;
  webhookEnabled: boolean;
  webhookUrl: string | null;
}

export interface NotifyInput {
  userId: string;
  type: NotificationType;
  title: string;
  message: string;
  endpoint?: { id: string; slug: string } | undefined;
  /** A second notification with the same key is not created (once per month, per streak, per hour…). */
  dedupeKey?: string | undefined;
}

export interface NotificationServiceDeps {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
  logger: Logger;
  mailer: Mailer;
  outbound: OutboundHttp;
  hub: EventHub;
  /** The outbound webhook channel gives up after this long. 5 s, as documented. */
  webhookTimeoutMs?: number;
}

/**
 * Stores notifications and sends them on the user's channels: in-app (always, live over SSE), email (on by
 * default), outbound webhook (off by default; SSRF-guarded POST of the documented JSON shape). Channel
 * sends never delay the caller: a hanging webhook target only costs its own 5 s.
 */
/** A stored notification as the API (and the user's data export) shows it. */
export function toNotificationView(row: {
  id: string;
  type: NotificationType;
  title: string;
  message: string;
  endpoint_id: string | null;
  endpoint_slug: string | null;
  read_at: number | null;
  created_at: number;
}): NotificationView {
  return {
    id: row.id,
    type: row.type,
    title: row.title,
    message: row.message,
    endpointId: row.endpoint_id,
    endpointSlug: row.endpoint_slug,
    read: row.read_at !== null,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/** A user's preferences as the API shows them; the defaults (mail on, webhook off) when never set. */
export function toPreferencesView(
  row: { email_enabled: number; webhook_enabled: number; webhook_url: string | null } | undefined,
): PreferencesView {
  return {
    emailEnabled: row ? row.email_enabled === 1 : true,
    webhookEnabled: row?.webhook_enabled === 1,
    webhookUrl: row?.webhook_url ?? null,
  };
}

export function createNotificationService(deps: NotificationServiceDeps) {
  const { storage, clock, newId, logger, mailer, outbound, hub } = deps;
  const { db } = storage;

  async function preferences(userId: string): Promise<PreferencesView> {
    const row = await db
      .selectFrom("notification_preferences")
      .selectAll()
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return toPreferencesView(row);
  }

  async function sendChannels(userId: string, view: NotificationView): Promise<void> {
    const prefs = await preferences(userId);
    const sends: Promise<unknown>[] = [];
    if (prefs.emailEnabled) {
      const user = await db.selectFrom("users").select("email").where("id", "=", userId).executeTakeFirst();
      if (user)
        sends.push(
          mailer.send({
            to: user.email,
            subject: `[Mitte] ${view.title}`,
            text: `${view.message}\n\n${view.createdAt}`,
          }),
        );
    }
    if (prefs.webhookEnabled && prefs.webhookUrl) {
      const body = JSON.stringify({
        type: view.type,
        title: view.title,
        message: view.message,
        endpointSlug: view.endpointSlug,
        timestamp: view.createdAt,
      });
      sends.push(
        outbound
          .send({
            url: prefs.webhookUrl,
            method: "POST",
            headers: { "content-type": "application/json", "user-agent": "Mitte-Notifications/1.0" },
            body,
            timeoutMs: deps.webhookTimeoutMs ?? 5_000,
            maxResponseBytes: 1_024,
          })
          .then((result) => {
            if (result.kind === "error")
              logger.warn(
                { userId, errorKind: result.errorKind, message: result.message },
                "notification webhook failed",
              );
            else if (result.status >= 400)
              logger.warn({ userId, status: result.status }, "notification webhook refused");
          }),
      );
    }
    for (const outcome of await Promise.allSettled(sends)) {
      if (outcome.status === "rejected")
        logger.warn({ err: outcome.reason, userId }, "notification channel failed");
    }
  }

  /** Outstanding channel sends, so tests and shutdown can wait for them. */
  const pending = new Set<Promise<void>>();

  return {
    async notify(input: NotifyInput): Promise<NotificationView | null> {
      const row = {
        id: newId("ntf"),
        user_id: input.userId,
        type: input.type,
        title: input.title,
        message: input.message,
        endpoint_id: input.endpoint?.id ?? null,
        endpoint_slug: input.endpoint?.slug ?? null,
        dedupe_key: input.dedupeKey ?? null,
        read_at: null,
        created_at: clock.now(),
      };
      const inserted = await db
        .insertInto("notifications")
        .values(row)
        .onConflict((oc) => oc.column("dedupe_key").doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return null;
      const view = toNotificationView(row);
      await hub
        .publish(input.userId, "notification:created", view)
        .catch((error: unknown) => logger.warn({ err: error }, "live event failed"));
      const sending = sendChannels(input.userId, view).finally(() => pending.delete(sending));
      pending.add(sending);
      return view;
    },

    async flushChannels(): Promise<void> {
      await Promise.all([...pending]);
    },

    async list(
      userId: string,
      page: { cursor?: string | undefined; limit: number; unread?: boolean | undefined },
    ) {
      let query = db.selectFrom("notifications").selectAll().where("user_id", "=", userId);
      if (page.unread) query = query.where("read_at", "is", null);
      if (page.cursor) query = query.where("id", "<", page.cursor);
      const rows = await query
        .orderBy("id", "desc")
        .limit(page.limit + 1)
        .execute();
      const unread = await db
        .selectFrom("notifications")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("user_id", "=", userId)
        .where("read_at", "is", null)
        .executeTakeFirstOrThrow();
      return { ...toPage(rows, page.limit, toNotificationView), unreadCount: Number(unread.n) };
    },

    async markRead(userId: string, id: string): Promise<boolean> {
      const found = await db
        .selectFrom("notifications")
        .select("id")
        .where("user_id", "=", userId)
        .where("id", "=", id)
        .executeTakeFirst();
      if (!found) return false;
      await db
        .updateTable("notifications")
        .set({ read_at: clock.now() })
        .where("id", "=", id)
        .where("read_at", "is", null)
        .execute();
      return true;
    },

    async markAllRead(userId: string): Promise<number> {
      const result = await db
        .updateTable("notifications")
        .set({ read_at: clock.now() })
        .where("user_id", "=", userId)
        .where("read_at", "is", null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    preferences,

    async updatePreferences(userId: string, patch: Partial<PreferencesView>): Promise<PreferencesView> {
      const current = await preferences(userId);
      const next = { ...current, ...patch };
      const row = {
        user_id: userId,
        email_enabled: next.emailEnabled ? 1 : 0,
        webhook_enabled: next.webhookEnabled ? 1 : 0,
        webhook_url: next.webhookUrl,
        updated_at: clock.now(),
      };
      await db
        .insertInto("notification_preferences")
        .values(row)
        .onConflict((oc) => oc.column("user_id").doUpdateSet({ ...row }))
        .execute();
      return next;
    },
  };
}

export type NotificationService = ReturnType<typeof createNotificationService>;
