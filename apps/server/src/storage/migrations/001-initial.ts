import type { Kysely } from "kysely";
import type { Dialect } from "../dialect.js";

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const bytes = dialect === "postgres" ? "bytea" : "blob";

  await db.schema
    .createTable("users")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("email", "text", (c) => c.notNull().unique())
    .addColumn("name", "text")
    .addColumn("plan", "text", (c) => c.notNull().defaultTo("free"))
    .addColumn("trial_ends_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("api_keys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("key_hash", "text", (c) => c.notNull().unique())
    .addColumn("hint", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("last_used_at", "bigint")
    .execute();
  await db.schema.createIndex("api_keys_user_idx").on("api_keys").columns(["user_id", "id"]).execute();

  await db.schema
    .createTable("endpoints")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("slug", "text", (c) => c.notNull().unique())
    .addColumn("target_url", "text", (c) => c.notNull())
    .addColumn("signing_secret_sealed", "text")
    .addColumn("is_paused", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("endpoints_user_idx").on("endpoints").columns(["user_id", "id"]).execute();

  await db.schema
    .createTable("webhook_logs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("endpoint_id", "text", (c) => c.notNull().references("endpoints.id").onDelete("cascade"))
    .addColumn("method", "text", (c) => c.notNull())
    .addColumn("query", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("request_headers", "text", (c) => c.notNull())
    .addColumn("request_body", bytes, (c) => c.notNull())
    .addColumn("request_size", "integer", (c) => c.notNull())
    .addColumn("source", "text")
    .addColumn("is_test", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("attempt_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("max_attempts", "integer", (c) => c.notNull())
    .addColumn("next_attempt_at", "bigint")
    .addColumn("response_status", "integer")
    .addColumn("error_kind", "text")
    .addColumn("error_message", "text")
    .addColumn("duration_ms", "integer")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("completed_at", "bigint")
    .execute();
  // Listing is newest-first by id (ids are time-sortable), always scoped to a user or an endpoint.
  await db.schema
    .createIndex("webhook_logs_user_idx")
    .on("webhook_logs")
    .columns(["user_id", "id"])
    .execute();
  await db.schema
    .createIndex("webhook_logs_endpoint_idx")
    .on("webhook_logs")
    .columns(["endpoint_id", "id"])
    .execute();
  await db.schema
    .createIndex("webhook_logs_created_idx")
    .on("webhook_logs")
    .columns(["created_at"])
    .execute();

  await db.schema
    .createTable("delivery_attempts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("log_id", "text", (c) => c.notNull().references("webhook_logs.id").onDelete("cascade"))
    .addColumn("attempt", "integer", (c) => c.notNull())
    .addColumn("started_at", "bigint", (c) => c.notNull())
    .addColumn("duration_ms", "integer", (c) => c.notNull())
    .addColumn("target_url", "text", (c) => c.notNull())
    .addColumn("request_headers", "text", (c) => c.notNull())
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("response_status", "integer")
    .addColumn("response_headers", "text")
    .addColumn("response_body", bytes)
    .addColumn("response_truncated", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("error_kind", "text")
    .addColumn("error_message", "text")
    .execute();
  await db.schema
    .createIndex("delivery_attempts_log_idx")
    .on("delivery_attempts")
    .columns(["log_id", "attempt"])
    .execute();

  await db.schema
    .createTable("queue_jobs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("queue", "text", (c) => c.notNull())
    .addColumn("group_key", "text", (c) => c.notNull())
    .addColumn("run_at", "bigint", (c) => c.notNull())
    .addColumn("locked_until", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("queue_jobs_due_idx").on("queue_jobs").columns(["queue", "run_at"]).execute();

  await db.schema
    .createTable("usage_counters")
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("period", "text", (c) => c.notNull())
    .addColumn("request_count", "bigint", (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint("usage_counters_pk", ["user_id", "period"])
    .execute();
}
