import type { Kysely } from "kysely";
import { queuedLogRow } from "../modules/ingest/ingest.service.js";
import type { JobOutcome } from "../queue/queue.js";
import type { Database } from "../storage/schema.js";

/** A log still to be delivered, as ingest writes it; queue tests insert these instead of ingesting. */
export function pendingLogRow(fields: { id: string; userId: string; endpointId: string; now: number }) {
  return queuedLogRow({
    ...fields,
    method: "POST",
    query: "",
    requestHeaders: "{}",
    body: Buffer.from("{}"),
    source: null,
    isTest: false,
    maxAttempts: 5,
  });
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
