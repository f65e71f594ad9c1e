import type { CompiledQuery } from "kysely";
import { BatchWriter } from "../../lib/batch-writer.js";
import type { LogStatus, NewWebhookLog } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";

export interface AttemptRecord {
  id: string;
  log_id: string;
  attempt: number;
  started_at: number;
  duration_ms: number;
  target_url: string;
  request_headers: string;
  outcome: "success" | "failure";
  response_status: number | null;
  response_headers: string | null;
  response_body: Buffer | null;
  response_truncated: number;
  error_kind: string | null;
  error_message: string | null;
}

export type DeliveryEvent =
  | { kind: "started"; logId: string; atMs: number }
  | {
      kind: "finished";
      attempt: AttemptRecord;
      status: Extract<LogStatus, "retrying" | "delivered" | "failed">;
      nextAttemptAt: number | null;
      atMs: number;
    };

/**
 * Group-commits delivery bookkeeping: status changes and attempt rows of many concurrent deliveries go
 * to the database in one transaction, in the order they happened.
 */
export function createDeliveryRecorder(storage: Storage): BatchWriter<DeliveryEvent> {
  const { db } = storage;
  return new BatchWriter<DeliveryEvent>(
    async (events) => {
      const statements: CompiledQuery[] = [];
      // Attempt rows depend on nothing else in the batch: one multi-row insert (15 columns a row).
      const attempts = events.flatMap((event) => (event.kind === "finished" ? [event.attempt] : []));
      for (let start = 0; start < attempts.length; start += 200) {
        statements.push(
          db
            .insertInto("delivery_attempts")
            .values(attempts.slice(start, start + 200))
            .compile(),
        );
      }
      let started: string[] = [];
      let startedAt = 0;
      const flushStarted = () => {
        if (started.length === 0) return;
        // By id only: a status condition here makes SQLite pick the status index and scan every waiting
        // log. The handler never starts a finished log, and events apply in order, so none is needed.
        statements.push(
          db
            .updateTable("webhook_logs")
            .set({ status: "delivering", updated_at: startedAt })
            .where("id", "in", started)
            .compile(),
        );
        started = [];
      };
      for (const event of events) {
        if (event.kind === "started") {
          started.push(event.logId);
          startedAt = event.atMs;
          continue;
        }
        flushStarted();
        const { attempt } = event;
        const update: Partial<NewWebhookLog> = {
          status: event.status,
          attempt_count: attempt.attempt,
          next_attempt_at: event.nextAttemptAt,
          response_status: attempt.response_status,
          error_kind: attempt.error_kind,
          error_message: attempt.error_message,
          duration_ms: attempt.duration_ms,
          updated_at: event.atMs,
          completed_at: event.status === "retrying" ? null : event.atMs,
        };
        statements.push(
          db.updateTable("webhook_logs").set(update).where("id", "=", attempt.log_id).compile(),
        );
      }
      flushStarted();
      await storage.executeBatch(statements);
    },
    {
      // Events of one log must apply in order. SQLite's thread executes batches in the order they are sent,
      // so two may be in flight; PostgreSQL could commit overlapping batches out of order, so one.
      maxInFlight: storage.dialect === "sqlite" ? 2 : 1,
    },
  );
}
