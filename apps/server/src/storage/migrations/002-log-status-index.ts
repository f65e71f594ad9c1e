import type { Kysely } from "kysely";

/** The reconciler looks for logs by status and age. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex("webhook_logs_status_idx")
    .on("webhook_logs")
    .columns(["status", "updated_at"])
    .execute();
}
