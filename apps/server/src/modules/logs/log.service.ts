import type { AttemptView, ListLogsQuery, LogDetailView, LogSummaryView, Page } from "@mitte/contract";
import { toPage } from "../../lib/pagination.js";
import type { DeliveryAttemptRow, WebhookLogRow } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import { toBodyView } from "./body-view.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const summaryColumns = [
  "id",
  "endpoint_id",
  "method",
  "source",
  "is_test",
  "status",
  "attempt_count",
  "max_attempts",
  "next_attempt_at",
  "response_status",
  "error_kind",
  "error_message",
  "duration_ms",
  "request_size",
  "created_at",
  "completed_at",
] as const;

type SummaryRow = Pick<WebhookLogRow, (typeof summaryColumns)[number]>;

function toSummary(row: SummaryRow): LogSummaryView {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    method: row.method,
    source: row.source,
    test: row.is_test === 1,
    status: row.status,
    attempts: row.attempt_count,
    maxAttempts: row.max_attempts,
    nextAttemptAt: row.status === "retrying" ? iso(row.next_attempt_at) : null,
    responseStatus: row.response_status,
    errorKind: row.error_kind,
    errorMessage: row.error_message,
    durationMs: row.duration_ms,
    requestSize: row.request_size,
    createdAt: new Date(row.created_at).toISOString(),
    completedAt: iso(row.completed_at),
  };
}

function toAttempt(row: DeliveryAttemptRow): AttemptView {
  return {
    attempt: row.attempt,
    startedAt: new Date(row.started_at).toISOString(),
    durationMs: row.duration_ms,
    targetUrl: row.target_url,
    outcome: row.outcome,
    requestHeaders: JSON.parse(row.request_headers) as Record<string, string>,
    responseStatus: row.response_status,
    responseHeaders:
      row.response_headers === null ? null : (JSON.parse(row.response_headers) as Record<string, string>),
    responseBody:
      row.response_body === null ? null : toBodyView(row.response_body, row.response_truncated === 1),
    errorKind: row.error_kind,
    errorMessage: row.error_message,
  };
}

/** Reading logs; every query is scoped to the user, so another user's log id is simply not found. */
export function createLogService({ storage }: { storage: Storage }) {
  const { db } = storage;
  return {
    async list(userId: string, filter: ListLogsQuery): Promise<Page<LogSummaryView>> {
      let query = db.selectFrom("webhook_logs").select(summaryColumns).where("user_id", "=", userId);
      if (filter.endpointId) query = query.where("endpoint_id", "=", filter.endpointId);
      if (filter.status) query = query.where("status", "=", filter.status);
      if (filter.source) query = query.where("source", "=", filter.source);
      if (filter.test !== undefined) query = query.where("is_test", "=", filter.test ? 1 : 0);
      if (filter.from !== undefined) query = query.where("created_at", ">=", filter.from);
      if (filter.to !== undefined) query = query.where("created_at", "<", filter.to);
      if (filter.cursor) query = query.where("id", "<", filter.cursor);
      const rows = await query
        .orderBy("id", "desc")
        .limit(filter.limit + 1)
        .execute();
      return toPage(rows, filter.limit, toSummary);
    },

    async get(userId: string, id: string): Promise<LogDetailView | null> {
      // One snapshot for the log and its attempts, so a delivery finishing in between cannot show an attempt
      // beside a status that predates it. (SQLite transactions are serializable; PostgreSQL needs the level.)
      const read =
        storage.dialect === "postgres"
          ? db.transaction().setIsolationLevel("repeatable read")
          : db.transaction();
      const found = await read.execute(async (trx) => {
        const row = await trx
          .selectFrom("webhook_logs")
          .selectAll()
          .where("user_id", "=", userId)
          .where("id", "=", id)
          .executeTakeFirst();
        if (!row) return null;
        const attempts = await trx
          .selectFrom("delivery_attempts")
          .selectAll()
          .where("log_id", "=", id)
          .orderBy("attempt")
          .orderBy("started_at")
          .execute();
        return { row, attempts };
      });
      if (!found) return null;
      const { row, attempts } = found;
      return {
        ...toSummary(row),
        query: row.query,
        requestHeaders: JSON.parse(row.request_headers) as Record<string, string | string[]>,
        requestBody: toBodyView(row.request_body),
        attemptDetails: attempts.map(toAttempt),
      };
    },
  };
}

export type LogService = ReturnType<typeof createLogService>;
