import type { Kysely } from "kysely";

/** Fixed here: a migration must not change when the application's histogram does. */
const LATENCY_BUCKET_COUNT = 12;

/** Notifications, per-user channel preferences and hourly delivery stats. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("notifications")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("title", "text", (c) => c.notNull())
    .addColumn("message", "text", (c) => c.notNull())
    .addColumn("endpoint_id", "text")
    .addColumn("endpoint_slug", "text")
    // Makes "once per month / per trial / per hour" notifications idempotent across processes.
    .addColumn("dedupe_key", "text", (c) => c.unique())
    .addColumn("read_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("notifications_user_idx")
    .on("notifications")
    .columns(["user_id", "id"])
    .execute();

  await db.schema
    .createTable("notification_preferences")
    .addColumn("user_id", "text", (c) => c.primaryKey().references("users.id").onDelete("cascade"))
    .addColumn("email_enabled", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("webhook_enabled", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("webhook_url", "text")
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();

  let stats = db.schema
    .createTable("endpoint_stats")
    .addColumn("endpoint_id", "text", (c) => c.notNull().references("endpoints.id").onDelete("cascade"))
    // "hour" buckets feed anomaly detection (kept 49 h); "day" buckets feed charts (kept 90 days).
    .addColumn("granularity", "text", (c) => c.notNull())
    .addColumn("bucket_start", "bigint", (c) => c.notNull())
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("requests", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("successes", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("failures", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("latency_sum_ms", "bigint", (c) => c.notNull().defaultTo(0));
  // A latency histogram (counts per bucket) gives p95 without keeping every sample.
  for (let bucket = 0; bucket < LATENCY_BUCKET_COUNT; bucket++) {
    stats = stats.addColumn(`lat_${bucket}`, "integer", (c) => c.notNull().defaultTo(0));
  }
  await stats
    .addPrimaryKeyConstraint("endpoint_stats_pk", ["endpoint_id", "granularity", "bucket_start"])
    .execute();
  await db.schema
    .createIndex("endpoint_stats_user_idx")
    .on("endpoint_stats")
    .columns(["user_id", "granularity", "bucket_start"])
    .execute();
}
