import type { Clock } from "../../lib/clock.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { Plan, UserRow } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import type { ApiKeyService } from "../api-keys/api-key.service.js";

export interface UserServiceDeps {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
  apiKeys: ApiKeyService;
}

export type CreateUserResult =
  | { outcome: "created"; user: UserRow; apiKey: string }
  | { outcome: "email_taken" };

export function createUserService({ storage, clock, newId, apiKeys }: UserServiceDeps) {
  const { db } = storage;

  return {
    /** Creates a user with a first API key (shown once). Used by the CLI and, later, sign-up. */
    async createUser(input: { email: string; name?: string; plan?: Plan }): Promise<CreateUserResult> {
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
        trial_ends_at: null,
        created_at: now,
        updated_at: now,
      };
      await db.insertInto("users").values(user).execute();
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

    async count(): Promise<number> {
      const row = await db
        .selectFrom("users")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
