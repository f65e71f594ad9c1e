import { z } from "zod";
import { pageCursor } from "./pagination.js";

export const logStatuses = ["queued", "delivering", "retrying", "delivered", "failed"] as const;
export type LogStatusName = (typeof logStatuses)[number];

const isoOrEpoch = z.union([
  z.coerce.number().int().nonnegative(),
  z.iso.datetime({ offset: true }).transform((value) => Date.parse(value)),
]);

export const listLogsQuery = z.strictObject({
  endpointId: z.string().max(100).optional(),
  status: z.enum(logStatuses).optional(),
  source: z.string().max(50).optional(),
  test: z
    .enum(["true", "false"])
    .transform((value) => value === "true")
    .optional(),
  /** Inclusive lower bound on creation time: ISO-8601 or epoch milliseconds. */
  from: isoOrEpoch.optional(),
  /** Exclusive upper bound on creation time. */
  to: isoOrEpoch.optional(),
  cursor: pageCursor.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});
export type ListLogsQuery = z.infer<typeof listLogsQuery>;

export interface BodyView {
  /** UTF-8 text when the bytes are valid UTF-8, otherwise base64. */
  encoding: "utf8" | "base64";
  data: string;
  size: number;
  truncated?: boolean;
}

export interface AttemptView {
  attempt: number;
  startedAt: string;
  durationMs: number;
  targetUrl: string;
  outcome: "success" | "failure";
  requestHeaders: Record<string, string>;
  responseStatus: number | null;
  responseHeaders: Record<string, string> | null;
  responseBody: BodyView | null;
  errorKind: string | null;
  errorMessage: string | null;
}

export interface LogSummaryView {
  id: string;
  endpointId: string;
  method: string;
  source: string | null;
  test: boolean;
  status: LogStatusName;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: string | null;
  responseStatus: number | null;
  errorKind: string | null;
  errorMessage: string | null;
  durationMs: number | null;
  requestSize: number;
  createdAt: string;
  completedAt: string | null;
}

export interface LogDetailView extends LogSummaryView {
  query: string;
  requestHeaders: Record<string, string | string[]>;
  requestBody: BodyView;
  attemptDetails: AttemptView[];
}
