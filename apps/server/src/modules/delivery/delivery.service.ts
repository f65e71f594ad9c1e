import DataLoader from "dataloader";
import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import { signWebhook } from "../../lib/crypto.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { AbortableRequest, OutboundHttp, OutboundResult } from "../../lib/outbound-http.js";
import type { ClaimedJob, JobOutcome } from "../../queue/queue.js";
import { padToPowerOfTwo, QueryTemplate } from "../../storage/query-template.js";
import { DELIVERY_LOG_COLUMNS, type DeliveryLogRow, type LogStatus } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import type { EndpointDirectory } from "../endpoints/endpoint-directory.js";
import { limitsFor, maxAttemptsFor } from "../plans/plan-limits.js";
import type { AttemptRecord } from "./delivery-recorder.js";
import { createDeliveryRecorder } from "./delivery-recorder.js";
import { forwardableHeaders, targetUrlWithQuery } from "./forward-headers.js";
import { nextAttemptDelayMs, parseRetryAfterMs } from "./retry-policy.js";

/** What listeners (stats, notifications, live events) learn after every attempt. */
export interface DeliveryOutcomeEvent {
  logId: string;
  userId: string;
  endpointId: string;
  attempt: number;
  status: Extract<LogStatus, "retrying" | "delivered" | "failed">;
  success: boolean;
  responseStatus: number | null;
  errorKind: string | null;
  durationMs: number;
  isTest: boolean;
  atMs: number;
}

export interface DeliveryServiceDeps {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
  logger: Logger;
  directory: EndpointDirectory;
  outbound: OutboundHttp;
  /** Source of jitter; tests pin it. */
  random: () => number;
  timeoutMs: number;
  maxResponseBytes: number;
  listeners?: ((event: DeliveryOutcomeEvent) => void)[];
}

/** An attempt still running after this long is marked `delivering` on its log. */
const STARTED_MARK_DELAY_MS = 1_000;

/** A target that answers 410 Gone says the URL will never work again; retrying cannot help. */
const NON_RETRYABLE_STATUSES = new Set([410]);

export function createDeliveryService(deps: DeliveryServiceDeps) {
  const { storage, clock, directory, outbound } = deps;
  const recorder = createDeliveryRecorder(storage);
  const logsById = new QueryTemplate<string[]>({
    build: (ids) => storage.db.selectFrom("webhook_logs").select(DELIVERY_LOG_COLUMNS).where("id", "in", ids),
    shape: (ids) => ids.length,
    parameters: (ids) => ids,
  });
  // Deliveries claimed together load their logs in one query instead of one each.
  const logs = new DataLoader<string, DeliveryLogRow | undefined>(
    async (ids) => {
      // Padded: a few statement shapes instead of one per batch size (see padToPowerOfTwo).
      const { rows } = await storage.db.executeQuery<DeliveryLogRow>(logsById.compile(padToPowerOfTwo(ids)));
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id));
    },
    { cache: false, maxBatchSize: 512 },
  );
  const listeners = deps.listeners ?? [];

  function describeResult(result: OutboundResult) {
    if (result.kind === "response") {
      return {
        success: result.status < 400,
        retryable: !NON_RETRYABLE_STATUSES.has(result.status),
        responseStatus: result.status,
        errorKind: result.status < 400 ? null : "http_status",
        errorMessage: result.status < 400 ? null : `target answered HTTP ${result.status}`,
      };
    }
    return {
      success: false,
      retryable: result.retryable,
      responseStatus: null,
      errorKind: result.errorKind,
      errorMessage: result.message,
    };
  }

  /** Requests to targets in flight, which `abandon()` ends. */
  const sending = new Set<AbortableRequest>();
  let abandoned = false;
  /**
   * An attempt cut short by shutdown is not the target's failure and must not count as one (on Free, its
   * only attempt): nothing is recorded and the job is handed back as due now. Its log is still pending, so
   * the queue delivers it again (after the restart, or on another worker); the target may see it twice.
   */
  const handBack = (): JobOutcome => ({ kind: "retry", runAtMs: clock.now() });

  /** Delivers one attempt of one webhook; the queue calls this with the log id, and the log when it has it. */
  async function deliver(job: ClaimedJob): Promise<JobOutcome> {
    const log = job.log ?? (await logs.load(job.logId));
    // Gone (retention, endpoint deleted) or already finished by an earlier run of this job: nothing to do.
    if (!log || log.status === "delivered" || log.status === "failed") return { kind: "done" };
    const endpoint = await directory.byId(log.endpoint_id);
    if (!endpoint) return { kind: "done" };
    // Paused: the log stays queued; resuming the endpoint enqueues it again.
    if (endpoint.paused) return { kind: "done" };

    const attemptNumber = log.attempt_count + 1;
    const startedAt = clock.now();
    const headers = forwardableHeaders(JSON.parse(log.request_headers) as Record<string, string | string[]>);
    headers["x-mitte-attempt"] = String(attemptNumber);
    // Stable across attempts and replays of this webhook, so receivers can drop duplicates.
    headers["x-mitte-delivery-id"] = log.id;
    if (log.is_test === 1) headers["x-mitte-test"] = "true";
    if (endpoint.signingSecret) {
      headers["x-mitte-signature"] = signWebhook(
        endpoint.signingSecret,
        Math.floor(startedAt / 1000),
        log.request_body,
      );
    }
    const url = targetUrlWithQuery(endpoint.targetUrl, log.query);
    // Abandoned before the attempt starts (while its log and endpoint loaded, say): do not start one nothing
    // would cut short. From here to the request's registration in `sending` nothing awaits, so abandon()
    // cannot fall in between.
    if (abandoned) return handBack();

    // The log says "delivering" only for attempts still running after a moment. Most finish within
    // milliseconds, and marking each of them first cost a second write of its row (about a sixth of
    // SQLite's work per delivery); a mark submitted late still precedes the finish, so order holds.
    const markStarted = setTimeout(() => {
      recorder.submit({ kind: "started", logId: log.id, atMs: startedAt }).catch((error: unknown) => {
        deps.logger.warn({ err: error, logId: log.id }, "could not mark delivery as started");
      });
    }, STARTED_MARK_DELAY_MS);
    markStarted.unref();
    const result = await outbound.send({
      url,
      method: log.method,
      headers,
      body: log.request_body,
      timeoutMs: deps.timeoutMs,
      maxResponseBytes: deps.maxResponseBytes,
      inFlight: sending,
    });
    clearTimeout(markStarted);
    // Cut short by abandon(): not the target's failure. An answer that did arrive is recorded as usual
    // (handing it back would deliver the webhook twice).
    if (abandoned && result.kind === "error") return handBack();

    const outcome = describeResult(result);
    const finishedAt = clock.now();
    let status: DeliveryOutcomeEvent["status"] = outcome.success ? "delivered" : "failed";
    let nextAttemptAt: number | null = null;
    // The owner's plan now, not at arrival, bounds what is left: after a downgrade to Free, pending retries end.
    const maxAttempts = Math.min(
      log.max_attempts,
      maxAttemptsFor(limitsFor(endpoint.owner, finishedAt), log.is_test === 1),
    );
    if (!outcome.success && outcome.retryable && attemptNumber < maxAttempts) {
      const retryAfter =
        result.kind === "response" ? parseRetryAfterMs(result.headers["retry-after"], finishedAt) : null;
      status = "retrying";
      nextAttemptAt = finishedAt + nextAttemptDelayMs(attemptNumber, deps.random(), retryAfter);
    }
    const attempt: AttemptRecord = {
      id: deps.newId("att"),
      log_id: log.id,
      attempt: attemptNumber,
      started_at: startedAt,
      duration_ms: Math.round(result.durationMs),
      target_url: url,
      request_headers: JSON.stringify(headers),
      outcome: outcome.success ? "success" : "failure",
      response_status: outcome.responseStatus,
      response_headers: result.kind === "response" ? JSON.stringify(result.headers) : null,
      response_body: result.kind === "response" ? result.body : null,
      response_truncated: result.kind === "response" && result.truncated ? 1 : 0,
      error_kind: outcome.errorKind,
      error_message: outcome.errorMessage,
    };
    await recorder.submit({ kind: "finished", attempt, status, nextAttemptAt, atMs: finishedAt });

    const event: DeliveryOutcomeEvent = {
      logId: log.id,
      userId: log.user_id,
      endpointId: log.endpoint_id,
      attempt: attemptNumber,
      status,
      success: outcome.success,
      responseStatus: outcome.responseStatus,
      errorKind: outcome.errorKind,
      durationMs: attempt.duration_ms,
      isTest: log.is_test === 1,
      atMs: finishedAt,
    };
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        deps.logger.error({ err: error }, "delivery listener failed");
      }
    }
    return nextAttemptAt === null ? { kind: "done" } : { kind: "retry", runAtMs: nextAttemptAt };
  }

  return {
    deliver,
    /** Waits until all bookkeeping of finished attempts is committed. */
    flush: () => recorder.flush(),
    /**
     * Shutdown, once the queue's grace period is over: ends the attempts still waiting on their targets
     * (a hung target would otherwise hold the process until the delivery timeout) and hands their jobs back.
     */
    abandon(): void {
      abandoned = true;
      const reason = new DOMException("Mitte is shutting down", "AbortError");
      for (const request of sending) request.abort(reason);
    },
  };
}

export type DeliveryService = ReturnType<typeof createDeliveryService>;
