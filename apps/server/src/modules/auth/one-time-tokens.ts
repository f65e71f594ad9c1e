import { randomBytes } from "node:crypto";
import type { Clock } from "../../lib/clock.js";
import { sha256Hex } from "../../lib/crypto.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { OneTimePurpose } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";

export type ConsumeOutcome =
  | { outcome: "ok"; userId: string }
  | { outcome: "invalid" }
  | { outcome: "expired" };

/** Single-use, expiring tokens for links in mail (email verification, password reset). Stored hashed. */
export function createOneTimeTokens({
  storage,
  clock,
  newId,
}: {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
}) {
  const { db } = storage;
  return {
    async issue(userId: string, purpose: OneTimePurpose, ttlMs: number): Promise<string> {
      const token = randomBytes(32).toString("base64url");
      const now = clock.now();
      await db
        .insertInto("one_time_tokens")
        .values({
          id: newId("ott"),
          user_id: userId,
          purpose,
          token_hash: sha256Hex(token),
          created_at: now,
          expires_at: now + ttlMs,
          used_at: null,
        })
        .execute();
      return token;
    },

    /** Spends every unused token of `purpose` the user still holds (older links stop working). */
    async revokeAll(userId: string, purpose: OneTimePurpose): Promise<void> {
      await db
        .updateTable("one_time_tokens")
        .set({ used_at: clock.now() })
        .where("user_id", "=", userId)
        .where("purpose", "=", purpose)
        .where("used_at", "is", null)
        .execute();
    },

    /** Marks the token used in the same statement that checks it, so two concurrent uses cannot both win. */
    async consume(token: string, purpose: OneTimePurpose): Promise<ConsumeOutcome> {
      const now = clock.now();
      const hash = sha256Hex(token);
      const used = await db
        .updateTable("one_time_tokens")
        .set({ used_at: now })
        .where("token_hash", "=", hash)
        .where("purpose", "=", purpose)
        .where("used_at", "is", null)
        .where("expires_at", ">", now)
        .returning("user_id")
        .executeTakeFirst();
      if (used) return { outcome: "ok", userId: used.user_id };
      const row = await db
        .selectFrom("one_time_tokens")
        .select(["expires_at", "used_at"])
        .where("token_hash", "=", hash)
        .where("purpose", "=", purpose)
        .executeTakeFirst();
      return row && row.used_at === null && row.expires_at <= now
        ? { outcome: "expired" }
        : { outcome: "invalid" };
    },
  };
}

export type OneTimeTokens = ReturnType<typeof createOneTimeTokens>;
