import type { Kysely } from "kysely";
import type { JobOutcome } from "../queue/queue.js";
import type { Database, NewWebhookLog } from "../storage/schema.js";

/** A log still to be delivered, as ingest writes it; queue tests insert these instead of ingesting. */
export function pendingLogRow(fields: { id: string; userId: string; endpointId: string; now: number }) {
  const { id, userId, endpointId, now } = fields;
  return {
    id,
    user_id: userId,
    endpoint_id: endpointId,
    method: "POST",
    query: "",
    request_headers: "{}",
    request_body: Buffer.from("{}"),
    request_size: 2,
    source: null,
    is_test: 0,
    status: "queued",
    attempt_count: 0,
    max_attempts: 5,
    next_attempt_at: now,
    response_status: null,
    error_kind: null,
    error_message: null,
    duration_ms: null,
    created_at: now,
    updated_at: now,
    completed_at: null,
  } satisfies NewWebhookLog;
}

/** What the delivery recorder writes for an outcome; queue tests' handlers do it before they return. */
export async function recordOutcome(
  db: Kysely<Database>,
  logId: string,
  outcome: JobOutcome,
): Promise<JobOutcome> {
  await db
    .updateTable("webhook_logs")
    .set(
      outcome.kind === "done"
        ? { status: "delivered", next_attempt_at: null }
        : { status: "retrying", next_attempt_at: outcome.runAtMs },
    )
    .where("id", "=", logId)
    .execute();
  return outcome;
}
