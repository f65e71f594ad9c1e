import { randomUUID } from "node:crypto";
import { DelayedError, type Job, Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { BatchWriter } from "../../lib/batch-writer.js";
import type { Clock } from "../../lib/clock.js";
import { GroupSlots } from "../../lib/group-slots.js";
import type { CommittedJob, DeliveryJob, DeliveryQueue, JobHandler, JobOutcome } from "../queue.js";

export interface BullmqQueueOptions {
  /** Fail-fast connection shared by producers (enableOfflineQueue: false). */
  connection: Redis;
  /** Factory for consumer connections (BullMQ wants maxRetriesPerRequest: null there). */
  createWorkerConnection: () => Redis;
  prefix: string;
  clock: Clock;
  logger: Logger;
  concurrency: number;
  /** Jobs per endpoint in flight in this process. */
  groupConcurrency: number;
  /** Longer than the delivery timeout, so a slow but live delivery is never taken as stalled. */
  lockDurationMs: number;
  queueName?: string;
  /** A consumer idle this long while jobs wait is considered stuck and rebuilt. Default 5 s. */
  stuckAfterMs?: number;
}

interface JobData {
  logId: string;
  endpointId: string;
  /** When this job is due by the service clock (the delay itself is kept by Redis in real time). */
  runAtMs: number;
}

/** The delivery jobs of one ingest commit, added by a worker process as individual jobs. */
interface HandoverData {
  jobs: DeliveryJob[];
}

/** A job whose endpoint has no free slot here waits this long for one... */
const GROUP_SLOT_WAIT_MS = 200;
/**
 * ...then goes back to the queue for this long (plus jitter), freeing its worker slot for other endpoints;
 * longer while the endpoint's slots have all been stuck (a hung target), up to the maximum added.
 */
const GROUP_BUSY_DELAY_MS = 1_000;
const GROUP_STALLED_EXTRA_DELAY_MAX_MS = 10_000;
/** Retry of a job whose handler threw (database down, bug): the job is kept, not failed. */
const HANDLER_ERROR_DELAY_MS = 30_000;
/** A hand-over takes milliseconds; a worker that died holding one releases it within about this long. */
const HANDOVER_LOCK_MS = 5_000;

/**
 * Delivery queue on BullMQ. Job id = log id, so re-adding a job that is still waiting or running is a
 * no-op (the reconciler relies on that). Completed jobs are removed at once to keep Redis memory flat;
 * the database row is the history. Retries are moved to the delayed set with the same id.
 *
 * Ingestion hands its jobs over one commit at a time: a single hand-over job (one Redis script) carries
 * the commit's delivery jobs, and a worker process adds them as individual jobs. Adding every delivery
 * job from the api process cost a Redis script per webhook, the largest share of both the api process's
 * and Redis's time under ingest load. A hand-over whose worker dies is taken up again (stalled-job check);
 * adding a job twice is a no-op, and the reconciler covers a hand-over that Redis lost.
 */
export class BullmqDeliveryQueue implements DeliveryQueue {
  readonly #opts: Required<BullmqQueueOptions>;
  readonly #queue: Queue<JobData>;
  readonly #handovers: Queue<HandoverData>;
  /** Commits that end while a hand-over is being added travel together in the next one. */
  readonly #handoverWriter = new BatchWriter<readonly DeliveryJob[]>(
    (commits) => this.#handOver(commits.flat()),
    { maxBatch: 64 },
  );
  readonly #slots: GroupSlots;
  #worker: Worker<JobData> | undefined;
  #handoverWorker: Worker<HandoverData> | undefined;
  #manualWorker: Worker<JobData> | undefined;
  #manualHandoverWorker: Worker<HandoverData> | undefined;
  #handler: JobHandler | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #lastProgressAt = Date.now();
  #lastHandoverAt = Date.now();
  #active = 0;
  #stuck = false;
  #closing = false;

  constructor(options: BullmqQueueOptions) {
    this.#opts = { queueName: "deliveries", stuckAfterMs: 5_000, ...options };
    this.#slots = new GroupSlots(options.groupConcurrency);
    this.#queue = new Queue<JobData>(this.#opts.queueName, {
      connection: options.connection,
      prefix: options.prefix,
      // Bounded events stream: Redis memory must not grow with traffic.
      streams: { events: { maxLen: 1_000 } },
      defaultJobOptions: { removeOnComplete: true, removeOnFail: { count: 1_000, age: 7 * 24 * 3600 } },
    });
    this.#queue.on("error", (error) => this.#opts.logger.warn({ err: error }, "bullmq queue error"));
    this.#handovers = new Queue<HandoverData>(`${this.#opts.queueName}-handover`, {
      connection: options.connection,
      prefix: options.prefix,
      streams: { events: { maxLen: 1_000 } },
      defaultJobOptions: {
        removeOnComplete: true,
        removeOnFail: { count: 1_000, age: 7 * 24 * 3600 },
        // A hand-over that could not add its jobs (Redis refusing a write) is tried again for about 17
        // minutes; past that the reconciler, which re-enqueues from the database, has long covered it.
        attempts: 10,
        backoff: { type: "exponential", delay: 1_000 },
      },
    });
    this.#handovers.on("error", (error) => this.#opts.logger.warn({ err: error }, "bullmq queue error"));
  }

  async afterCommit(committed: readonly CommittedJob[]): Promise<void> {
    if (committed.length === 0) return;
    // Ids only: the log stays in the database (a worker loads it), not in Redis.
    const jobs = committed.map(
      ({ logId, endpointId, runAtMs }): DeliveryJob => ({ logId, endpointId, runAtMs }),
    );
    // The logs are committed, so the webhook is safe whatever happens here: if Redis refuses, the
    // reconciler enqueues them later. Never fail the caller (that would turn a stored webhook into a 5xx).
    await this.#handoverWriter.submit(jobs).catch((error: unknown) => {
      this.#opts.logger.warn(
        { err: error, jobs: jobs.length },
        "enqueue after commit failed; the reconciler will retry",
      );
    });
  }

  async enqueue(jobs: readonly DeliveryJob[]): Promise<void> {
    await this.#add(jobs);
  }

  async startConsumer(handler: JobHandler): Promise<void> {
    this.#handler = handler;
    this.#worker = this.#createWorker();
    this.#handoverWorker = this.#createHandoverWorker();
    this.#watchdog = setInterval(() => void this.#checkProgress(), 2_500);
    this.#watchdog.unref();
  }

  async runOnce(handler: JobHandler): Promise<number> {
    this.#handler = handler;
    this.#manualWorker ??= new Worker<JobData>(this.#opts.queueName, null, {
      connection: this.#opts.createWorkerConnection(),
      prefix: this.#opts.prefix,
      autorun: false,
      lockDuration: this.#opts.lockDurationMs,
    });
    await this.#handoverWriter.flush();
    await this.#runHandovers();
    // Promote delayed jobs that are due by the service clock (tests move that clock, not Redis time).
    const now = this.#opts.clock.now();
    for (const job of await this.#queue.getDelayed()) {
      if (job.data.runAtMs <= now) await job.promote();
    }
    const claimed: { job: Job<JobData>; token: string }[] = [];
    for (;;) {
      const token = randomUUID();
      const job = await this.#manualWorker.getNextJob(token, { block: false });
      if (!job) break;
      claimed.push({ job, token });
    }
    let ran = 0;
    await Promise.all(
      claimed.map(async ({ job, token }) => {
        try {
          await this.#process(job, token);
          await job.moveToCompleted("done", token, false);
          ran++;
        } catch (error) {
          if (!(error instanceof DelayedError)) throw error;
          if (job.data.runAtMs > now) ran++; // rescheduled for a retry after running, not a busy endpoint
        }
      }),
    );
    return ran;
  }

  async #handOver(jobs: readonly DeliveryJob[]): Promise<void> {
    const data: HandoverData = {
      jobs: jobs.map(({ logId, endpointId, runAtMs }) => ({ logId, endpointId, runAtMs })),
    };
    await this.#handovers.add("handover", data);
  }

  /** Hands over every pending hand-over job now (tests drive the queue without background workers). */
  async #runHandovers(): Promise<void> {
    this.#manualHandoverWorker ??= new Worker<HandoverData>(this.#handovers.name, null, {
      connection: this.#opts.createWorkerConnection(),
      prefix: this.#opts.prefix,
      autorun: false,
      lockDuration: HANDOVER_LOCK_MS,
    });
    for (;;) {
      const token = randomUUID();
      const job = await this.#manualHandoverWorker.getNextJob(token, { block: false });
      if (!job) return;
      await this.#add(job.data.jobs);
      await job.moveToCompleted("done", token, false);
    }
  }

  /** Delivery jobs waiting, delayed or running, with those still inside a pending hand-over. */
  async depth(): Promise<number> {
    const counts = await this.#queue.getJobCounts("waiting", "active", "delayed", "prioritized");
    const pending = await this.#handovers.getJobs(["waiting", "active", "delayed", "prioritized"]);
    const handedOver = pending.reduce((sum, job) => sum + (job?.data.jobs.length ?? 0), 0);
    return Object.values(counts).reduce((sum, n) => sum + n, 0) + handedOver;
  }

  isReady(): boolean {
    if (this.#closing || this.#opts.connection.status !== "ready") return false;
    if (!this.#worker) return true;
    return this.#worker.isRunning() && this.#handoverWorker?.isRunning() === true && !this.#stuck;
  }

  async close(graceMs = 10_000, onGraceEnd?: () => void): Promise<void> {
    this.#closing = true;
    clearInterval(this.#watchdog);
    await this.#handoverWriter.flush();
    const workers = [
      this.#worker,
      this.#manualWorker,
      this.#handoverWorker,
      this.#manualHandoverWorker,
    ].filter((w): w is Worker<JobData> | Worker<HandoverData> => w !== undefined);
    // close() waits for running jobs; past the grace period force-close: their locks expire and the
    // stalled-job check hands them to another worker (nothing is lost, the delivery may repeat).
    const graceful = Promise.all(workers.map((w) => w.close())).then(() => true);
    const timedOut = new Promise<false>((resolve) => setTimeout(resolve, graceMs, false).unref());
    if (!(await Promise.race([graceful, timedOut]))) {
      // A forced close joins the graceful one (it waits for running jobs all the same), so the jobs still
      // running are cut short first: they hand themselves back while the workers can still move them.
      onGraceEnd?.();
      await Promise.all(workers.map((w) => w.close(true)));
    }
    await Promise.all([this.#queue.close(), this.#handovers.close()]);
  }

  #createWorker(): Worker<JobData> {
    const worker = new Worker<JobData>(this.#opts.queueName, (job, token) => this.#process(job, token), {
      connection: this.#opts.createWorkerConnection(),
      prefix: this.#opts.prefix,
      concurrency: this.#opts.concurrency,
      lockDuration: this.#opts.lockDurationMs,
      // Locks of a dead worker are found within one interval after they expire.
      stalledInterval: Math.min(30_000, this.#opts.lockDurationMs),
      // A job whose worker died is retried, never failed for having stalled (the default of 1 would
      // drop a webhook after two crashes).
      maxStalledCount: 1_000_000,
      removeOnComplete: { count: 0 },
    });
    worker.on("error", (error) => this.#opts.logger.warn({ err: error }, "bullmq worker error"));
    return worker;
  }

  #createHandoverWorker(): Worker<HandoverData> {
    const worker = new Worker<HandoverData>(
      this.#handovers.name,
      async (job) => {
        await this.#add(job.data.jobs);
        this.#lastHandoverAt = Date.now();
      },
      {
        connection: this.#opts.createWorkerConnection(),
        prefix: this.#opts.prefix,
        concurrency: 4,
        lockDuration: HANDOVER_LOCK_MS,
        stalledInterval: HANDOVER_LOCK_MS,
        maxStalledCount: 1_000_000,
        removeOnComplete: { count: 0 },
      },
    );
    worker.on("error", (error) => this.#opts.logger.warn({ err: error }, "bullmq worker error"));
    return worker;
  }

  async #process(job: Job<JobData>, token: string | undefined): Promise<void> {
    const { logId, endpointId } = job.data;
    if (!(await this.#slots.acquire(endpointId, GROUP_SLOT_WAIT_MS))) {
      // This endpoint already has its share of slots here: give the slot to another endpoint's job.
      const stalledMs = Math.min(GROUP_STALLED_EXTRA_DELAY_MAX_MS, this.#slots.stalledForMs(endpointId));
      const delayMs = GROUP_BUSY_DELAY_MS + stalledMs + Math.floor(Math.random() * 500);
      await job.moveToDelayed(Date.now() + delayMs, token);
      throw new DelayedError();
    }
    this.#active++;
    this.#lastProgressAt = Date.now();
    let outcome: JobOutcome;
    try {
      outcome = await this.#handler!({ logId, endpointId });
    } catch (error) {
      this.#opts.logger.error({ err: error, logId }, "delivery job failed unexpectedly; retrying in 30 s");
      outcome = { kind: "retry", runAtMs: this.#opts.clock.now() + HANDLER_ERROR_DELAY_MS };
    } finally {
      this.#active--;
      this.#lastProgressAt = Date.now();
      this.#slots.release(endpointId);
    }
    if (outcome.kind === "retry") {
      await job.updateData({ ...job.data, runAtMs: outcome.runAtMs });
      await job.moveToDelayed(Date.now() + Math.max(0, outcome.runAtMs - this.#opts.clock.now()), token);
      throw new DelayedError();
    }
  }

  /**
   * Watchdog for a consumer that silently stops after a long Redis outage (BullMQ issue #4585: the
   * blocking connection can stay "reconnecting" forever while isRunning() is true). If jobs wait, none
   * runs here and none started for a while, the worker is rebuilt.
   */
  async #checkProgress(): Promise<void> {
    await this.#checkHandoverProgress();
    if (this.#closing || !this.#worker || this.#active > 0) return;
    if (Date.now() - this.#lastProgressAt < this.#opts.stuckAfterMs) return;
    let waiting: number;
    try {
      waiting = await this.#queue.getWaitingCount();
    } catch {
      return; // Redis still down; nothing to judge yet.
    }
    if (waiting === 0) {
      this.#lastProgressAt = Date.now();
      return;
    }
    this.#stuck = true;
    this.#opts.logger.warn({ waiting }, "delivery consumer made no progress while jobs wait; rebuilding it");
    const old = this.#worker;
    this.#worker = this.#createWorker();
    this.#lastProgressAt = Date.now();
    this.#stuck = false;
    await old.close(true).catch(() => {});
  }

  /** The same watchdog for the hand-over consumer: hand-overs waiting and none taken for a while. */
  async #checkHandoverProgress(): Promise<void> {
    if (this.#closing || !this.#handoverWorker) return;
    if (Date.now() - this.#lastHandoverAt < this.#opts.stuckAfterMs) return;
    let waiting: number;
    try {
      waiting = await this.#handovers.getWaitingCount();
    } catch {
      return;
    }
    this.#lastHandoverAt = Date.now();
    if (waiting === 0) return;
    this.#opts.logger.warn(
      { waiting },
      "hand-over consumer made no progress while hand-overs wait; rebuilding it",
    );
    const old = this.#handoverWorker;
    this.#handoverWorker = this.#createHandoverWorker();
    await old.close(true).catch(() => {});
  }

  async #add(jobs: readonly DeliveryJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const now = this.#opts.clock.now();
    await this.#queue.addBulk(
      jobs.map((job) => ({
        name: "deliver",
        data: { logId: job.logId, endpointId: job.endpointId, runAtMs: job.runAtMs },
        opts: { jobId: job.logId, delay: Math.max(0, job.runAtMs - now) },
      })),
    );
  }
}
