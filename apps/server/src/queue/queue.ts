import type { DeliveryLogRow } from "../storage/schema.js";

/**
 * Delivery jobs carry ids, not payloads: the log row in the database is the truth, the queue only
 * triggers work. A job's id is its log id, so enqueueing the same log twice is harmless.
 */
export interface DeliveryJob {
  logId: string;
  /** Jobs of one endpoint share a group so a per-endpoint concurrency cap can be applied. */
  endpointId: string;
  runAtMs: number;
}

/** A job handed over right after its log committed, with the log as written (no need to read it back). */
export interface CommittedJob extends DeliveryJob {
  log: DeliveryLogRow;
}

export type JobOutcome = { kind: "done" } | { kind: "retry"; runAtMs: number };

export interface ClaimedJob {
  logId: string;
  endpointId: string;
  /** The log as read by the claim, when the queue reads logs anyway (embedded); else the handler loads it. */
  log?: DeliveryLogRow;
}

/**
 * Runs one job. It writes the attempt's outcome to the log before it returns (the embedded queue reads
 * what is pending from the logs): `done` once the log is delivered, failed or gone, `retry` once the
 * log's `next_attempt_at` is `runAtMs`.
 */
export type JobHandler = (job: ClaimedJob) => Promise<JobOutcome>;

export interface DeliveryQueue {
  /**
   * Called once the transaction committed: hands jobs to a broker, or wakes local consumers. Never
   * rejects: the logs are stored, and a broker that refuses them now leaves them to the reconciler.
   */
  afterCommit(jobs: readonly CommittedJob[]): Promise<void>;
  /** Enqueue logs already committed, outside ingest (resume of a paused endpoint, reconciler). */
  enqueue(jobs: readonly DeliveryJob[]): Promise<void>;
  /** Start consuming with `handler`; resolves once the consumer is running. */
  startConsumer(handler: JobHandler): Promise<void>;
  /**
   * Runs every job due at the clock's current time and waits for them (and their acknowledgements).
   * Tests drive delivery with this and a manual clock instead of the background consumer.
   */
  runOnce(handler: JobHandler): Promise<number>;
  /** Jobs waiting, delayed or running. */
  depth(): Promise<number>;
  /** False while the queue cannot accept or hand out jobs (broker down, consumer stuck). */
  isReady(): boolean;
  /**
   * Stop taking jobs; waits for in-flight handlers up to `graceMs`, then releases what is left. `onGraceEnd`
   * runs when the grace period ends with handlers still running (after fetching stopped), so the caller can
   * cut them short; the close then waits for them to return.
   */
  close(graceMs?: number, onGraceEnd?: () => void): Promise<void>;
}
