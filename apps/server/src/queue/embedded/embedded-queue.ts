import { type Kysely, sql } from "kysely";
import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import { paddedInLists, QueryTemplate } from "../../storage/query-template.js";
import { type Database, DELIVERY_LOG_COLUMNS, type DeliveryLogRow } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import type { CommittedJob, DeliveryJob, DeliveryQueue, JobHandler, JobOutcome } from "../queue.js";

export interface EmbeddedQueueOptions {
  db: Kysely<Database>;
  storage: Storage;
  clock: Clock;
  logger: Logger;
  /** Jobs in flight in this process. */
  concurrency: number;
  /** Jobs in flight per group (endpoint). */
  groupConcurrency: number;
  /** How often idle consumers look for jobs that became due (retries). Default 250 ms. */
  pollIntervalMs?: number;
  /**
   * A job running longer than this stops counting against `concurrency` (its target is slow or hung), so
   * a few hung endpoints cannot hold every slot until their timeouts. Default 2 s.
   */
  parkAfterMs?: number;
}

/** Jobs in flight, parked ones included, never exceed this multiple of `concurrency`. */
const MAX_IN_FLIGHT_FACTOR = 4;

/** A claim round asks at most this many endpoints; more are served in the next round, at once. */
const MAX_GROUPS_PER_FILL = 32;
/** How often the table is scanned for groups this process has not been told about (left by a crash). */
const DISCOVER_EVERY_MS = 5_000;
/** A handler that throws hit an infrastructure fault: its log is tried again after this long. */
const HANDLER_ERROR_DELAY_MS = 30_000;
/** The statuses of a log that still has an attempt to make; exactly those carry a `next_attempt_at`. */
const PENDING_STATUSES = ["queued", "retrying", "delivering"] as const;

/**
 * The embedded queue keeps no jobs of its own: a pending log is its job. Every log that still has an
 * attempt to make carries `next_attempt_at` (set at ingest, moved by each retry, cleared when the log is
 * delivered or failed), and a partial index over (endpoint_id, next_attempt_at) holds exactly those
 * logs. Claiming is a read of that index; the lease is this process's memory, which is enough because
 * one process consumes an embedded database, and a process that dies takes its leases with it: after a
 * restart every pending log is due again (at-least-once). Acknowledging is the handler's own write of
 * the attempt's outcome, so a delivery costs no queue writes at all, and ingest commits the log alone.
 * Logs of paused endpoints are not claimed; resuming an endpoint enqueues them.
 */
export class EmbeddedDeliveryQueue implements DeliveryQueue {
  readonly #opts: Required<EmbeddedQueueOptions>;
  /** Claimed logs whose handler has not returned (the in-memory leases). */
  readonly #inFlight = new Map<string, Promise<void>>();
  /** Running jobs in start order, swept into `#parked` once they have run `parkAfterMs`. */
  readonly #started: { id: string; at: number }[] = [];
  #startedHead = 0;
  /** Start time of each running job: tells a sweep entry of this run from one of an earlier run of the log. */
  readonly #startedAt = new Map<string, number>();
  readonly #parked = new Set<string>();
  /** The same, per group (endpoint). */
  readonly #runningPerGroup = new Map<string, Set<string>>();
  #handler: JobHandler | undefined;
  #closing = false;
  #loop: Promise<void> | undefined;
  #sleeper: (() => void) | undefined;
  /** Set when work arrives while the loop is busy claiming, so its next sleep returns at once. */
  #wakeRequested = false;
  /**
   * Whether due jobs may have been left behind by the last claim (it hit its limit or skipped saturated
   * endpoints). Only then does a finished job or a full claim need another claim at once; otherwise new
   * work wakes the loop itself, and a claim that finds nothing is a wasted round trip.
   */
  #backlogPossible = true;
  /**
   * Endpoints (groups) that may have jobs, with the earliest time one may be due. Logs are claimed per
   * group through the partial index, so a backlog behind a saturated or hung endpoint is never scanned by
   * the claims of the others. Filled by ingest, enqueues, retries and a periodic discovery from the table
   * (the source of truth).
   */
  readonly #groups = new Map<string, number>();
  /** Bumped by every note, so an exhausted claim does not forget a group that got work meanwhile. */
  readonly #groupNotes = new Map<string, number>();
  /** Groups that may hold jobs due later (retries, discovered rows): exhaustion checks the table first. */
  readonly #mayHaveFuture = new Set<string>();
  #discoveredAt = Number.NEGATIVE_INFINITY;
  /**
   * Up to `limit` due logs of one endpoint that this process is not running (`running`: a JSON array of
   * their ids), oldest first, unless the endpoint is paused; with what their delivery reads, so the
   * claim is also the load. Its terms match the partial index `webhook_logs_pending_idx` (SQLite uses a
   * partial index only for a query that states the index's condition), which covers the skipping of
   * running logs: only the rows claimed are read.
   */
  readonly #claims = new QueryTemplate<{ group: string; limit: number; now: number; running: string }>({
    build: ({ group, limit, now, running }) =>
      this.#opts.db
        .selectFrom("webhook_logs")
        .select(DELIVERY_LOG_COLUMNS)
        .where("endpoint_id", "=", group)
        .where("next_attempt_at", "is not", null)
        .where("next_attempt_at", "<=", now)
        .where("id", "not in", sql<string>`(select value from json_each(${running}))`)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom("endpoints")
                .select(sql<number>`1`.as("one"))
                .where("endpoints.id", "=", group)
                .where("endpoints.is_paused", "=", 1),
            ),
          ),
        )
        .orderBy("next_attempt_at")
        .limit(limit),
    shape: () => 0,
    parameters: ({ group, limit, now, running }) => [group, now, running, group, 1, limit],
  });
  readonly #reschedules = new QueryTemplate<{ ids: string[]; runAtMs: number }>({
    build: ({ ids, runAtMs }) =>
      this.#opts.db
        .updateTable("webhook_logs")
        .set({ next_attempt_at: runAtMs })
        .where("id", "in", ids)
        .where("status", "in", PENDING_STATUSES),
    shape: ({ ids }) => ids.length,
    parameters: ({ ids, runAtMs }) => [runAtMs, ...ids, ...PENDING_STATUSES],
  });

  constructor(options: EmbeddedQueueOptions) {
    this.#opts = { pollIntervalMs: 250, parkAfterMs: 2_000, ...options };
  }

  async afterCommit(jobs: readonly CommittedJob[]): Promise<void> {
    const now = this.#opts.clock.now();
    let noted = false;
    for (const job of jobs) {
      if (this.#startCommitted(job, now)) continue;
      this.#noteWork(job.endpointId, job.runAtMs);
      noted = true;
    }
    if (noted) this.#wake();
  }

  /**
   * Starts a log that just committed from the row in memory, when the consumer runs, there is room, and
   * nothing of its endpoint is due in the table (so the endpoint's order holds). At low and moderate load
   * most webhooks then skip the claim, a round trip to SQLite's thread and back. A claim running
   * meanwhile may return the same log; it skips logs already running.
   */
  #startCommitted(job: CommittedJob, now: number): boolean {
    if (!this.#loop || this.#closing || job.runAtMs > now) return false;
    if (this.#inFlight.has(job.logId)) return true;
    const dueAt = this.#groups.get(job.endpointId);
    if (dueAt !== undefined && dueAt <= now) return false;
    if (!this.#hasRoom(job.endpointId)) return false;
    this.#start(job.log, job.endpointId);
    return true;
  }

  /** Whether one more job of `group` fits under the process's and the group's concurrency caps. */
  #hasRoom(group: string): boolean {
    return (
      this.#capacity() > 0 && (this.#runningPerGroup.get(group)?.size ?? 0) < this.#opts.groupConcurrency
    );
  }

  /**
   * Free slots: `concurrency` minus the jobs that are not parked, within the hard cap on everything in
   * flight. A parked job keeps its endpoint's slot, so the endpoint's own cap still holds.
   */
  #capacity(): number {
    const parkBefore = performance.now() - this.#opts.parkAfterMs;
    while (this.#startedHead < this.#started.length) {
      const oldest = this.#started[this.#startedHead]!;
      if (oldest.at > parkBefore) break;
      if (this.#startedAt.get(oldest.id) === oldest.at) this.#parked.add(oldest.id);
      this.#startedHead++;
    }
    if (this.#startedHead > 1_024 && this.#startedHead * 2 > this.#started.length) {
      this.#started.splice(0, this.#startedHead);
      this.#startedHead = 0;
    }
    const { concurrency } = this.#opts;
    return Math.min(
      concurrency - (this.#inFlight.size - this.#parked.size),
      concurrency * MAX_IN_FLIGHT_FACTOR - this.#inFlight.size,
    );
  }

  /** Schedules pending logs (resume of a paused endpoint): finished or unknown logs are left alone. */
  async enqueue(jobs: readonly DeliveryJob[]): Promise<void> {
    await this.#reschedule(jobs);
    for (const job of jobs) this.#noteWork(job.endpointId, job.runAtMs);
    this.#wake();
  }

  async #reschedule(jobs: readonly { logId: string; runAtMs: number }[]): Promise<void> {
    const idsByTime = new Map<number, string[]>();
    for (const { logId, runAtMs } of jobs) {
      const ids = idsByTime.get(runAtMs);
      if (ids) ids.push(logId);
      else idsByTime.set(runAtMs, [logId]);
    }
    const queries = [];
    for (const [runAtMs, ids] of idsByTime) {
      for (const list of paddedInLists(ids, 512))
        queries.push(this.#reschedules.compile({ ids: list, runAtMs }));
    }
    if (queries.length > 0) await this.#opts.storage.executeBatch(queries);
  }

  #noteWork(group: string, runAtMs: number): void {
    const known = this.#groups.get(group);
    if (known === undefined || runAtMs < known) this.#groups.set(group, runAtMs);
    if (runAtMs > this.#opts.clock.now()) this.#mayHaveFuture.add(group);
    this.#groupNotes.set(group, (this.#groupNotes.get(group) ?? 0) + 1);
  }

  /** Every endpoint that is not paused and has pending logs, and when its first one is due. */
  async #discover(): Promise<void> {
    this.#discoveredAt = performance.now();
    const rows = await this.#opts.db
      .selectFrom("webhook_logs")
      .select((eb) => ["endpoint_id", eb.fn.min("next_attempt_at").as("next")])
      .where("next_attempt_at", "is not", null)
      .where("endpoint_id", "not in", (eb) =>
        eb.selectFrom("endpoints").select("endpoints.id").where("endpoints.is_paused", "=", 1),
      )
      .groupBy("endpoint_id")
      .execute();
    for (const row of rows) {
      this.#noteWork(row.endpoint_id, Number(row.next));
      this.#mayHaveFuture.add(row.endpoint_id);
    }
  }

  async startConsumer(handler: JobHandler): Promise<void> {
    this.#handler = handler;
    this.#loop = this.#run();
  }

  /**
   * Claims and runs every job due now (within the capacity limits) and waits for them to finish.
   * Tests drive the queue with this and a manual clock instead of the background loop.
   */
  async runOnce(handler: JobHandler | undefined = this.#handler): Promise<number> {
    if (!handler) throw new Error("runOnce needs a handler");
    this.#handler = handler;
    this.#discoveredAt = Number.NEGATIVE_INFINITY;
    const claimed = await this.#fill();
    await Promise.all(this.#inFlight.values());
    return claimed;
  }

  isReady(): boolean {
    return !this.#closing;
  }

  /**
   * Stops claiming and waits up to `graceMs` for running handlers. What does not finish needs no
   * release: its log is still pending, and the next start claims it again.
   */
  async close(graceMs = 10_000, onGraceEnd?: () => void): Promise<void> {
    this.#closing = true;
    this.#wake();
    await this.#loop;
    const drained = Promise.all(this.#inFlight.values()).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, graceMs, false);
    });
    if (!(await Promise.race([drained, timedOut]))) {
      this.#opts.logger.warn(
        { jobs: this.#inFlight.size },
        "unfinished deliveries at shutdown; they run again at the next start",
      );
      if (onGraceEnd) {
        // Cut short, they return promptly; bounded all the same, since a handler may be stuck elsewhere.
        onGraceEnd();
        const settled = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 5_000);
        });
        await Promise.race([drained, settled]);
      }
    }
    clearTimeout(timer);
  }

  /** Pending logs of endpoints that are not paused: waiting, delayed or running. */
  async depth(): Promise<number> {
    const row = await this.#opts.db
      .selectFrom("webhook_logs")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("next_attempt_at", "is not", null)
      .where("endpoint_id", "not in", (eb) =>
        eb.selectFrom("endpoints").select("endpoints.id").where("endpoints.is_paused", "=", 1),
      )
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async #run(): Promise<void> {
    while (!this.#closing) {
      let claimed = 0;
      try {
        claimed = await this.#fill();
      } catch (error) {
        this.#opts.logger.error({ err: error }, "embedded queue: claiming jobs failed");
      }
      if ((claimed === 0 || !this.#backlogPossible) && !this.#closing)
        await this.#sleep(this.#opts.pollIntervalMs);
    }
  }

  #wake(): void {
    this.#wakeRequested = true;
    this.#sleeper?.();
  }

  #sleep(ms: number): Promise<void> {
    if (this.#wakeRequested) {
      this.#wakeRequested = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#sleeper = undefined;
        this.#wakeRequested = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#sleeper = done;
    });
  }

  async #fill(): Promise<number> {
    const capacity = this.#capacity();
    if (capacity <= 0 || !this.#handler) {
      this.#backlogPossible = true;
      return 0;
    }
    // Claim in batches: one claim round per finished job would make the claims the bottleneck.
    if (this.#inFlight.size > 0 && capacity < Math.max(1, Math.floor(this.#opts.concurrency / 8))) {
      this.#backlogPossible = true;
      return 0;
    }
    if (performance.now() - this.#discoveredAt > DISCOVER_EVERY_MS) await this.#discover();
    const now = this.#opts.clock.now();
    const { groupConcurrency } = this.#opts;
    // Due groups with a free slot, in round-robin order (served groups move to the back).
    const plan: { group: string; limit: number; notes: number }[] = [];
    let left = capacity;
    let dueButFull = false;
    for (const [group, dueAt] of this.#groups) {
      if (dueAt > now) continue;
      const running = this.#runningPerGroup.get(group)?.size ?? 0;
      const free = groupConcurrency - running;
      if (free <= 0) {
        dueButFull = true;
        continue;
      }
      if (left === 0 || plan.length === MAX_GROUPS_PER_FILL) break;
      const limit = Math.min(free, left);
      plan.push({ group, limit, notes: this.#groupNotes.get(group) ?? 0 });
      left -= limit;
    }
    if (plan.length === 0) {
      // A saturated group with due jobs gets its next claim when one of its slots frees up.
      this.#backlogPossible = dueButFull;
      return 0;
    }
    const results = await Promise.all(
      plan.map(async ({ group, limit }) => {
        const running = JSON.stringify(this.#runningIds(group));
        const claim = this.#claims.compile({ group, limit, now, running });
        const { rows } = await this.#opts.db.executeQuery<DeliveryLogRow>(claim);
        return rows;
      }),
    );
    let claimed = 0;
    let more = left === 0 || plan.length === MAX_GROUPS_PER_FILL || dueButFull;
    const exhausted: { group: string; notes: number }[] = [];
    plan.forEach(({ group, limit, notes }, index) => {
      const rows = results[index]!;
      let leftBehind = false;
      for (const log of rows) {
        // Started meanwhile from its commit (see #startCommitted).
        if (this.#inFlight.has(log.id)) continue;
        // Slots taken meanwhile by such hand-overs: the rest stays in the table for the next claim.
        if (!this.#hasRoom(group)) {
          leftBehind = true;
          break;
        }
        this.#start(log, group);
        claimed++;
      }
      this.#groups.delete(group);
      if (rows.length === limit || leftBehind) {
        this.#groups.set(group, now); // maybe more: back of the line
        more = true;
      } else exhausted.push({ group, notes });
    });
    for (const { group, notes } of exhausted) {
      // Work noted while the claim ran: keep the group.
      if ((this.#groupNotes.get(group) ?? 0) !== notes) {
        this.#groups.set(group, this.#groups.get(group) ?? now);
        continue;
      }
      if (!this.#mayHaveFuture.has(group)) continue;
      const next = await this.#nextDue(group, now);
      if (next === null) this.#mayHaveFuture.delete(group);
      else this.#noteWork(group, next);
    }
    this.#backlogPossible = more;
    return claimed;
  }

  /**
   * When the group's next log falls due after `now`, or null if it has none. (Every log due by `now`
   * that is not running was just claimed: the claim came back short.)
   */
  async #nextDue(group: string, now: number): Promise<number | null> {
    const row = await this.#opts.db
      .selectFrom("webhook_logs")
      .select((eb) => eb.fn.min("next_attempt_at").as("next"))
      .where("endpoint_id", "=", group)
      .where("next_attempt_at", "is not", null)
      .where("next_attempt_at", ">", now)
      .executeTakeFirst();
    return row?.next === null || row?.next === undefined ? null : Number(row.next);
  }

  /** Ids of the group's logs whose handler is running. */
  #runningIds(group: string): string[] {
    const ids = this.#runningPerGroup.get(group);
    return ids ? [...ids] : [];
  }

  #start(log: DeliveryLogRow, group: string): void {
    const handler = this.#handler!;
    const id = log.id;
    const running = this.#runningPerGroup.get(group) ?? new Set<string>();
    this.#runningPerGroup.set(group, running);
    running.add(id);
    const run = handler({ logId: id, endpointId: group, log })
      .catch(async (error: unknown): Promise<JobOutcome> => {
        // A handler that throws hit an infrastructure fault; try again later rather than lose the job.
        this.#opts.logger.error(
          { err: error, jobId: id },
          `delivery job failed unexpectedly; retrying in ${HANDLER_ERROR_DELAY_MS / 1000} s`,
        );
        const runAtMs = this.#opts.clock.now() + HANDLER_ERROR_DELAY_MS;
        // Held until written, so the log cannot be claimed again before it is pushed back.
        await this.#reschedule([{ logId: id, runAtMs }]).catch((writeError: unknown) => {
          this.#opts.logger.error({ err: writeError, jobId: id }, "could not reschedule a failed job");
        });
        return { kind: "retry", runAtMs };
      })
      .then((outcome) => {
        // The handler wrote the outcome to the log before returning (a retry's next_attempt_at too).
        if (outcome.kind === "retry") this.#noteWork(group, outcome.runAtMs);
      })
      .finally(() => {
        this.#inFlight.delete(id);
        this.#startedAt.delete(id);
        this.#parked.delete(id);
        running.delete(id);
        if (running.size === 0) this.#runningPerGroup.delete(group);
        if (this.#backlogPossible) this.#wake();
      });
    this.#inFlight.set(id, run);
    const at = performance.now();
    this.#startedAt.set(id, at);
    this.#started.push({ id, at });
  }
}
