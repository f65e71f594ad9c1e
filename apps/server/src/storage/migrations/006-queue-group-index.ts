import type { Kysely } from "kysely";

/** The embedded queue claims due jobs one endpoint (group) at a time, oldest first; locked_until makes it covering. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex("queue_jobs_group_due_idx")
    .on("queue_jobs")
    .columns(["queue", "group_key", "run_at", "locked_until"])
    .execute();
}
