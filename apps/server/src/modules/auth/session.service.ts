import { randomBytes } from "node:crypto";
import { serialize } from "cookie";
import type { Clock } from "../../lib/clock.js";
import { sha256Hex } from "../../lib/crypto.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { Storage } from "../../storage/storage.js";

export const SESSION_COOKIE = "mitte_session";

/** The `Set-Cookie` value that gives the browser a session token (or, with maxAgeSeconds 0, removes it). */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return serialize(SESSION_COOKIE, token, {
    httpOnly: true,
    secure,
    sameSite: "lax",
    path: "/",
    maxAge: maxAgeSeconds,
  });
}
/** Sliding renewal: a session used after this long gets a fresh expiry (one write per hour at most). */
const RENEW_AFTER_MS = 60 * 60 * 1000;

/** Browser sessions: a 256-bit random token in a cookie; only its SHA-256 is stored. */
export function createSessionService({
  storage,
  clock,
  newId,
  ttlMs,
}: {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
  ttlMs: number;
}) {
  const { db } = storage;
  return {
    ttlMs,

    async create(userId: string): Promise<{ token: string; expiresAt: number }> {
      const token = randomBytes(32).toString("base64url");
      const now = clock.now();
      const expiresAt = now + ttlMs;
      await db
        .insertInto("sessions")
        .values({
          id: newId("ses"),
          user_id: userId,
          token_hash: sha256Hex(token),
          created_at: now,
          expires_at: expiresAt,
          last_seen_at: now,
        })
        .execute();
      return { token, expiresAt };
    },

    /** `renewedUntil`: the session's new expiry when this use extended it (the cookie should follow). */
    async authenticate(
      token: string,
    ): Promise<{ userId: string; sessionId: string; renewedUntil: number | null } | null> {
      if (token.length < 40 || token.length > 64) return null;
      const row = await db
        .selectFrom("sessions")
        .selectAll()
        .where("token_hash", "=", sha256Hex(token))
        .executeTakeFirst();
      const now = clock.now();
      if (!row || row.expires_at <= now) return null;
      let renewedUntil: number | null = null;
      if (now - row.last_seen_at >= RENEW_AFTER_MS) {
        renewedUntil = now + ttlMs;
        await db
          .updateTable("sessions")
          .set({ last_seen_at: now, expires_at: renewedUntil })
          .where("id", "=", row.id)
          .execute();
      }
      return { userId: row.user_id, sessionId: row.id, renewedUntil };
    },

    async revoke(token: string): Promise<void> {
      await db.deleteFrom("sessions").where("token_hash", "=", sha256Hex(token)).execute();
    },

    /** "Log out everywhere". */
    async revokeAll(userId: string): Promise<void> {
      await db.deleteFrom("sessions").where("user_id", "=", userId).execute();
    },
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
