import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * Runs `deleteBatch` (which deletes at most `batchSize` rows) until a batch comes up short, letting the
 * event loop turn in between. A large delete in one statement holds SQLite's only writer, and so every
 * other write (ingest included), for as long as it runs; bounded batches let the others in between.
 * Returns how many rows were deleted.
 */
export async function deleteInBatches(
  batchSize: number,
  deleteBatch: () => Promise<{ numDeletedRows: bigint }>,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = Number((await deleteBatch()).numDeletedRows);
    total += deleted;
    if (deleted < batchSize) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Deletes the webhook logs (and, by cascade, their attempts) of one endpoint or one user in bounded batches,
 * up to the newest that existed when it started: logs that keep arriving while it runs (the endpoint still
 * takes webhooks until its row goes) cannot keep the loop going; they go with the row's cascade.
 */
export async function deleteLogsOf(
  db: Kysely<Database>,
  owner: { endpointId: string } | { userId: string },
  batchSize: number,
): Promise<number> {
  const column = "endpointId" in owner ? "endpoint_id" : "user_id";
  const value = "endpointId" in owner ? owner.endpointId : owner.userId;
  const newest = await db
    .selectFrom("webhook_logs")
    .select((eb) => eb.fn.max("id").as("id"))
    .where(column, "=", value)
    .executeTakeFirst();
  if (!newest?.id) return 0;
  const upTo = newest.id;
  return deleteInBatches(batchSize, () =>
    db
      .deleteFrom("webhook_logs")
      .where("id", "in", (eb) =>
        eb
          .selectFrom("webhook_logs")
          .select("webhook_logs.id")
          .where(`webhook_logs.${column}`, "=", value)
          .where("webhook_logs.id", "<=", upTo)
          .limit(batchSize),
      )
      .executeTakeFirstOrThrow(),
  );
}
