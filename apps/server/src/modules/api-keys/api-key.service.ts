import type { Clock } from "../../lib/clock.js";
import { sha256Hex } from "../../lib/crypto.js";
import { API_KEY_LENGTH, type IdGenerator, newApiKey } from "../../lib/ids.js";
import type { Storage } from "../../storage/storage.js";

export interface ApiKeyServiceDeps {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
}

export interface ApiKeyView {
  id: string;
  name: string;
  hint: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** `last_used_at` is written at most this often per key, so authenticated traffic is not a write each. */
const LAST_USED_RESOLUTION_MS = 60_000;
/**
 * Positive authentications are cached briefly. Revocation and account deletion clear the entry in this
 * process at once; other processes (scale mode) stop accepting the key within this time.
 */
const CACHE_TTL_MS = 5_000;

export function createApiKeyService({ storage, clock, newId }: ApiKeyServiceDeps) {
  const { db } = storage;
  const cache = new Map<
    string,
    { userId: string; keyId: string; expiresAt: number; lastUsedWrite: number }
  >();

  return {
    async create(userId: string, name: string): Promise<{ key: string; view: ApiKeyView }> {
      const key = newApiKey();
      const now = clock.now();
      const row = {
        id: newId("key"),
        user_id: userId,
        name,
        key_hash: sha256Hex(key),
        hint: key.slice(-8),
        created_at: now,
        last_used_at: null,
      };
      await db.insertInto("api_keys").values(row).execute();
      return { key, view: toView(row) };
    },

    async list(userId: string): Promise<ApiKeyView[]> {
      const rows = await db
        .selectFrom("api_keys")
        .selectAll()
        .where("user_id", "=", userId)
        .orderBy("id", "desc")
        .execute();
      return rows.map(toView);
    },

    async revoke(userId: string, keyId: string): Promise<boolean> {
      const result = await db
        .deleteFrom("api_keys")
        .where("user_id", "=", userId)
        .where("id", "=", keyId)
        .executeTakeFirst();
      for (const [hash, entry] of cache) if (entry.keyId === keyId) cache.delete(hash);
      return Number(result.numDeletedRows) > 0;
    },

    /** Forgets cached authentications of a user's keys (account deleted). */
    forgetUser(userId: string): void {
      for (const [hash, entry] of cache) if (entry.userId === userId) cache.delete(hash);
    },

    /** Returns the owner of a valid key, or null. Lookup is by SHA-256, so no plaintext key is stored. */
    async authenticate(key: string): Promise<{ userId: string; keyId: string } | null> {
      if (key.length !== API_KEY_LENGTH || !key.startsWith("mk_")) return null;
      const hash = sha256Hex(key);
      const now = clock.now();
      let entry = cache.get(hash);
      if (!entry || entry.expiresAt <= now) {
        const row = await db
          .selectFrom("api_keys")
          .select(["id", "user_id"])
          .where("key_hash", "=", hash)
          .executeTakeFirst();
        if (!row) {
          cache.delete(hash);
          return null;
        }
        entry = {
          userId: row.user_id,
          keyId: row.id,
          expiresAt: now + CACHE_TTL_MS,
          lastUsedWrite: entry?.lastUsedWrite ?? 0,
        };
        cache.set(hash, entry);
      }
      if (now - entry.lastUsedWrite >= LAST_USED_RESOLUTION_MS) {
        entry.lastUsedWrite = now;
        await db.updateTable("api_keys").set({ last_used_at: now }).where("id", "=", entry.keyId).execute();
      }
      return { userId: entry.userId, keyId: entry.keyId };
    },
  };
}

function toView(row: {
  id: string;
  name: string;
  hint: string;
  created_at: number;
  last_used_at: number | null;
}): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    hint: row.hint,
    createdAt: new Date(row.created_at).toISOString(),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at).toISOString(),
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
