import type { MeView } from "@mitte/contract";
import type { Clock } from "../../lib/clock.js";
import type { IdGenerator } from "../../lib/ids.js";
import { listOutbox } from "../../lib/mailer.js";
import { deleteLogsOf } from "../../storage/delete-in-batches.js";
import type { Plan, UserRow } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import type { ApiKeyService } from "../api-keys/api-key.service.js";
import { toBodyView } from "../logs/body-view.js";
import { toNotificationView, toPreferencesView } from "../notifications/notification.service.js";
import { effectivePlan } from "../plans/plan-limits.js";

/** Logs deleted per statement when their account is deleted (as retention). */
const ACCOUNT_PURGE_BATCH = 1_000;

export interface UserServiceDeps {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
  apiKeys: ApiKeyService;
}

export type CreateUserResult =
  | { outcome: "created"; user: UserRow; apiKey: string | null }
  | { outcome: "email_taken" };

export function createUserService({ storage, clock, newId, apiKeys }: UserServiceDeps) {
  const { db } = storage;

  return {
    /** Creates a user with a first API key (shown once). Used by the CLI and, later, sign-up. */
    async createUser(input: {
      email: string;
      name?: string;
      plan?: Plan;
      passwordHash?: string;
      emailVerified?: boolean;
      trialEndsAt?: number;
      avatarUrl?: string;
      /** Operator-made users get a first API key; browser sign-ups make their own. Default true. */
      withApiKey?: boolean;
    }): Promise<CreateUserResult> {
      const email = input.email.trim().toLowerCase();
      const existing = await db
        .selectFrom("users")
        .select("id")
        .where("email", "=", email)
        .executeTakeFirst();
      if (existing) return { outcome: "email_taken" };
      const now = clock.now();
      const user: UserRow = {
        id: newId("usr"),
        email,
        name: input.name ?? null,
        plan: input.plan ?? "free",
        trial_ends_at: input.trialEndsAt ?? null,
        created_at: now,
        updated_at: now,
        password_hash: input.passwordHash ?? null,
        // Users made by an operator (CLI) are trusted; sign-ups verify by mail.
        email_verified_at: (input.emailVerified ?? true) ? now : null,
        avatar_url: input.avatarUrl ?? null,
      };
      await db.insertInto("users").values(user).execute();
      if (input.withApiKey === false) return { outcome: "created", user, apiKey: null };
      const key = await apiKeys.create(user.id, "default");
      return { outcome: "created", user, apiKey: key.key };
    },

    async setPlan(email: string, plan: Plan): Promise<boolean> {
      const result = await db
        .updateTable("users")
        .set({ plan, updated_at: clock.now() })
        .where("email", "=", email.trim().toLowerCase())
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async getById(id: string): Promise<UserRow | undefined> {
      return db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
    },

    async profile(id: string, nowMs: number): Promise<MeView | null> {
      const user = await db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
      return user ? toMeView(user, nowMs) : null;
    },

    async updateProfile(id: string, patch: { name?: string | null | undefined }): Promise<void> {
      if (patch.name === undefined) return;
      await db
        .updateTable("users")
        .set({ name: patch.name, updated_at: clock.now() })
        .where("id", "=", id)
        .execute();
    },

    /**
     * Everything the user owns, as one portable JSON document (privacy policy §6). Never includes password
     * or key hashes, session tokens or signing secrets.
     */
    async exportData(id: string): Promise<Record<string, unknown>> {
      const now = clock.now();
      const user = await db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
      const endpoints = await db
        .selectFrom("endpoints")
        .selectAll()
        .where("user_id", "=", id)
        .orderBy("id")
        .execute();
      const apiKeys = await db
        .selectFrom("api_keys")
        .select(["id", "name", "hint", "created_at", "last_used_at"])
        .where("user_id", "=", id)
        .execute();
      const logs = await db
        .selectFrom("webhook_logs")
        .selectAll()
        .where("user_id", "=", id)
        .orderBy("id")
        .execute();
      const attempts = await db
        .selectFrom("delivery_attempts")
        .innerJoin("webhook_logs", "webhook_logs.id", "delivery_attempts.log_id")
        .selectAll("delivery_attempts")
        .where("webhook_logs.user_id", "=", id)
        .orderBy("delivery_attempts.id")
        .execute();
      const notifications = await db
        .selectFrom("notifications")
        .select(["id", "type", "title", "message", "endpoint_id", "endpoint_slug", "read_at", "created_at"])
        .where("user_id", "=", id)
        .orderBy("id")
        .execute();
      const preferences = await db
        .selectFrom("notification_preferences")
        .select(["email_enabled", "webhook_enabled", "webhook_url"])
        .where("user_id", "=", id)
        .executeTakeFirst();
      const oauth = await db
        .selectFrom("oauth_accounts")
        .select(["provider", "created_at"])
        .where("user_id", "=", id)
        .execute();
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      const attemptsByLog = new Map<string, typeof attempts>();
      for (const attempt of attempts) {
        const list = attemptsByLog.get(attempt.log_id);
        if (list) list.push(attempt);
        else attemptsByLog.set(attempt.log_id, [attempt]);
      }
      return {
        exportedAt: new Date(now).toISOString(),
        account: {
          ...toMeView(user, now),
          linkedLogins: oauth.map((o) => ({ provider: o.provider, linkedAt: iso(o.created_at) })),
        },
        apiKeys: apiKeys.map((k) => ({
          id: k.id,
          name: k.name,
          hint: k.hint,
          createdAt: iso(k.created_at),
          lastUsedAt: iso(k.last_used_at),
        })),
        endpoints: endpoints.map((e) => ({
          id: e.id,
          name: e.name,
          slug: e.slug,
          targetUrl: e.target_url,
          paused: e.is_paused === 1,
          signed: e.signing_secret_sealed !== null,
          createdAt: iso(e.created_at),
        })),
        webhookLogs: logs.map((log) => ({
          id: log.id,
          endpointId: log.endpoint_id,
          method: log.method,
          query: log.query,
          source: log.source,
          test: log.is_test === 1,
          status: log.status,
          requestHeaders: JSON.parse(log.request_headers) as unknown,
          requestBody: toBodyView(log.request_body),
          createdAt: iso(log.created_at),
          attempts: (attemptsByLog.get(log.id) ?? []).map((a) => ({
            attempt: a.attempt,
            startedAt: iso(a.started_at),
            durationMs: a.duration_ms,
            outcome: a.outcome,
            responseStatus: a.response_status,
            responseBody:
              a.response_body === null ? null : toBodyView(a.response_body, a.response_truncated === 1),
            errorKind: a.error_kind,
            errorMessage: a.error_message,
          })),
        })),
        notifications: notifications.map(toNotificationView),
        notificationPreferences: toPreferencesView(preferences),
      };
    },

    /**
     * Deletes the user and everything they own; sessions and API keys go with it. Their logs go first in
     * bounded batches (one cascading delete of a busy account would hold SQLite's only writer, and every
     * other user's ingest, for seconds), and the dev outbox's mail to them goes too (their address, links).
     */
    async deleteAccount(id: string): Promise<void> {
      const user = await db.selectFrom("users").select("email").where("id", "=", id).executeTakeFirst();
      if (!user) return;
      await deleteLogsOf(db, { userId: id }, ACCOUNT_PURGE_BATCH);
      await db.deleteFrom("users").where("id", "=", id).execute();
      await db.deleteFrom("mail_outbox").where("to_address", "=", user.email).execute();
    },

    /** Mail kept by the dev outbox (no mail provider configured), newest first. */
    outbox(limit: number) {
      return listOutbox(db, limit);
    },

    async count(): Promise<number> {
      const row = await db
        .selectFrom("users")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}

export function toMeView(user: UserRow, nowMs: number): MeView {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    avatarUrl: user.avatar_url,
    emailVerified: user.email_verified_at !== null,
    plan: user.plan,
    effectivePlan: effectivePlan(user, nowMs),
    trialEndsAt: user.trial_ends_at === null ? null : new Date(user.trial_ends_at).toISOString(),
    createdAt: new Date(user.created_at).toISOString(),
  };
}

export type UserService = ReturnType<typeof createUserService>;
