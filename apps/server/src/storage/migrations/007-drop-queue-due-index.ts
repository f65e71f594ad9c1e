import type { Kysely } from "kysely";

/**
 * Since 006 the embedded queue claims, counts and rescans through the per-group index; the older
 * (queue, run_at) index was still updated by every ingest, claim and ack without serving a query.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("queue_jobs_due_idx").ifExists().execute();
}
