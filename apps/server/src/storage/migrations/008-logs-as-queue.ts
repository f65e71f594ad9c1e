import { type Kysely, sql } from "kysely";
import type { Dialect } from "../dialect.js";

/**
 * The embedded queue claims pending logs themselves instead of job rows (see EmbeddedDeliveryQueue):
 * a log still to be attempted is exactly one with a `next_attempt_at`, and this partial index holds only
 * those, per endpoint in due order; with the id it covers the claim, which reads past the logs this
 * process is already running without touching their rows. Ingest then writes one row per webhook
 * instead of two, and a delivery no longer leases and deletes a job. PostgreSQL runs with BullMQ, which needs neither; both
 * drop the job table, which only the embedded queue used.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect === "sqlite") {
    await sql`create index webhook_logs_pending_idx on webhook_logs (endpoint_id, next_attempt_at, id) where next_attempt_at is not null`.execute(
      db,
    );
  }
  await db.schema.dropTable("queue_jobs").ifExists().execute();
}
