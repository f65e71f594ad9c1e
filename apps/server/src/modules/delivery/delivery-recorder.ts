import type { CompiledQuery } from "kysely";
import { BatchWriter } from "../../lib/batch-writer.js";
import { InsertTemplate, paddedInLists, QueryTemplate } from "../../storage/query-template.js";
import type { LogStatus, NewWebhookLog } from "../../storage/schema.js";
import { writeSkippingDeleted } from "../../storage/skip-deleted.js";
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
/** The columns of an attempt row, in the order the insert lists them. */
export const ATTEMPT_COLUMNS = [
  "id",
  "log_id",
  "attempt",
  "started_at",
  "duration_ms",
  "target_url",
  "request_headers",
  "outcome",
  "response_status",
  "response_headers",
  "response_body",
  "response_truncated",
  "error_kind",
  "error_message",
] as const satisfies readonly (keyof AttemptRecord)[];

type FinishedEvent = Extract<DeliveryEvent, { kind: "finished" }>;

/**
 * Group-commits delivery bookkeeping: status changes and attempt rows of many concurrent deliveries go
 * to the database in one transaction, in the order they happened.
 */
export function createDeliveryRecorder(storage: Storage): BatchWriter<DeliveryEvent> {
  const { db } = storage;
  // Attempt rows depend on nothing else in the batch: multi-row inserts (14 columns a row).
  const attemptInserts = new InsertTemplate<AttemptRecord>(
    (rows) => db.insertInto("delivery_attempts").values(rows),
    ATTEMPT_COLUMNS,
    128,
  );
  // By id only: a status condition here makes SQLite pick the status index and scan every waiting
  // log. The handler never starts a finished log, and events apply in order, so none is needed.
  const markStarted = new QueryTemplate<{ ids: string[]; atMs: number }>({
    build: ({ ids, atMs }) =>
      db.updateTable("webhook_logs").set({ status: "delivering", updated_at: atMs }).where("id", "in", ids),
    shape: ({ ids }) => ids.length,
    parameters: ({ ids, atMs }) => ["delivering", atMs, ...ids],
  });
  const markFinished = new QueryTemplate<FinishedEvent>({
    build: (event) =>
      db.updateTable("webhook_logs").set(finishedColumns(event)).where("id", "=", event.attempt.log_id),
    shape: () => 0,
    parameters: (event) => [...Object.values(finishedColumns(event)), event.attempt.log_id],
  });
  function pushStarted(statements: CompiledQuery[], ids: readonly string[], atMs: number): void {
    for (const list of paddedInLists(ids, 512)) statements.push(markStarted.compile({ ids: list, atMs }));
  }

  /** In order, one statement per run of starts and per finish: right for any sequence of events. */
  function pushOrdered(statements: CompiledQuery[], events: readonly DeliveryEvent[]): void {
    let started: string[] = [];
    let startedAt = 0;
    for (const event of events) {
      if (event.kind === "started") {
        started.push(event.logId);
        startedAt = event.atMs;
        continue;
      }
      pushStarted(statements, started, startedAt);
      started = [];
      statements.push(markFinished.compile(event));
    }
    pushStarted(statements, started, startedAt);
  }

  /**
   * The logs finished in this batch, or null when some log has an event after its finish. Without such
   * an event (the usual case) every log row can be written once: a start followed by its finish is just
   * the finish (which sets every column the start sets). The statements then touch distinct rows, so
   * they are independent, which PostgreSQL runs as one statement: one round trip instead of one per
   * statement inside BEGIN/COMMIT, which made the recorder the bottleneck of a scale-mode worker.
   */
  function finishedOnceEach(events: readonly DeliveryEvent[]): Set<string> | null {
    const finished = new Set<string>();
    for (const event of events) {
      const logId = event.kind === "started" ? event.logId : event.attempt.log_id;
      if (finished.has(logId)) return null;
      if (event.kind === "finished") finished.add(logId);
    }
    return finished;
  }

  /** Each log's row once: the starts of logs that did not finish in one list, then every finish. */
  function pushCollapsed(
    statements: CompiledQuery[],
    events: readonly DeliveryEvent[],
    finished: ReadonlySet<string>,
  ): void {
    const started = new Set<string>();
    let startedAt = 0;
    for (const event of events) {
      if (event.kind !== "started" || finished.has(event.logId)) continue;
      started.add(event.logId);
      startedAt = Math.max(startedAt, event.atMs);
    }
    pushStarted(statements, [...started], startedAt);
    for (const event of events) if (event.kind === "finished") statements.push(markFinished.compile(event));
  }

  async function write(events: readonly DeliveryEvent[]): Promise<void> {
    const attempts = events.flatMap((event) => (event.kind === "finished" ? [event.attempt] : []));
    const statements: CompiledQuery[] = attemptInserts.compile(attempts);
    const finished = finishedOnceEach(events);
    if (finished) pushCollapsed(statements, events, finished);
    else pushOrdered(statements, events);
    await storage.executeBatch(statements, { independent: finished !== null });
  }

  return new BatchWriter<DeliveryEvent>(
    async (events) => {
      // A log deleted while its attempt ran (its endpoint or account removed) leaves its attempt row
      // nothing to belong to. Record the others instead of failing every delivery of the batch (they
      // would run again); the deleted log's events have nothing left to update.
      await writeSkippingDeleted(db, "webhook_logs", logIdOf, events, write);
    },
    {
      // Events of one log must apply in order, so batches apply one after another. (SQLite's thread would
      // keep the order of two in flight, but the second only waited behind the first, and splitting the
      // waiting events into more, smaller commits cost S4 a sixth of its delivery rate.)
      maxInFlight: 1,
    },
  );
}

function logIdOf(event: DeliveryEvent): string {
  return event.kind === "started" ? event.logId : event.attempt.log_id;
}

/** What a finished attempt sets on its log; every key is always present, so the SQL never changes. */
function finishedColumns(event: FinishedEvent) {
  const { attempt } = event;
  return {
    status: event.status,
    attempt_count: attempt.attempt,
    next_attempt_at: event.nextAttemptAt,
    response_status: attempt.response_status,
    error_kind: attempt.error_kind,
    error_message: attempt.error_message,
    duration_ms: attempt.duration_ms,
    updated_at: event.atMs,
    completed_at: event.status === "retrying" ? null : event.atMs,
  } satisfies Partial<NewWebhookLog>;
}
