import type { CompiledQuery, Insertable, Kysely } from "kysely";
import type { Logger } from "pino";
import { BatchWriter } from "../../lib/batch-writer.js";
import type { Clock } from "../../lib/clock.js";
import { InsertTemplate, paddedInLists, QueryTemplate } from "../../storage/query-template.js";
import type { Database, QueueJobsTable } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import type { DeliveryJob, DeliveryQueue, JobHandler, JobOutcome } from "../queue.js";

export interface EmbeddedQueueOptions {
  db: Kysely<Database>;
  storage: Storage;
  clock: Clock;
  logger: Logger;
  queueName?: string;
  /** Jobs in flight in this process. */
  concurrency: number;
  /** Jobs in flight per group (endpoint). */
  groupConcurrency: number;
  /** A claimed job is reclaimable after this long; must exceed the longest handler run. */
  leaseMs: number;
  /** How often idle consumers look for jobs that became due (retries). Default 250 ms. */
  pollIntervalMs?: number;
}

type Ack = { id: string; outcome: JobOutcome };

/** A claim round asks at most this many endpoints; more are served in the next round, at once. */
const MAX_GROUPS_PER_FILL = 32;
/** How often the table is scanned for groups this process has not been told about (expired leases). */
const DISCOVER_EVERY_MS = 5_000;

/**
 * Durable queue stored in the same SQLite database as the logs. Job rows are written in the ingest
 * transaction, so a committed log always has its job. A consumer claims due jobs by leasing them; jobs
 * whose handler never finished (crash, kill -9) are claimed again: delivery is at-least-once.
 * One consumer per database: embedded mode runs one process.
 */
export class EmbeddedDeliveryQueue implements DeliveryQueue {
  readonly #opts: Required<EmbeddedQueueOptions>;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #inFlightPerGroup = new Map<string, number>();
  readonly #acks: BatchWriter<Ack>;
  #handler: JobHandler | undefined;
  #closing = false;
  #loop: Promise<void> | undefined;
  #sleeper: (() => void) | undefined;
  /** Set when work arrives while the loop is busy claiming, so its next sleep returns at once. */
  #wakeRequested = false;
  /**
   * Whether due jobs may have been left behind by the last claim (it hit its limit, skipped saturated
   * endpoints or handed jobs back). Only then does a finished job or a full claim need another claim at
   * once; otherwise new work wakes the loop itself, and a claim that finds nothing is a wasted write.
   */
  #backlogPossible = true;
  /**
   * Endpoints (groups) that may have jobs, with the earliest time one may be due. Jobs are claimed per
   * group through the (queue, group_key, run_at, locked_until) index, so a backlog behind a saturated or
   * hung endpoint is never scanned by the claims of the others. Filled by enqueues, retries and a periodic
   * discovery from the table (the source of truth; it also catches leases that expired).
   */
  readonly #groups = new Map<string, number>();
  /** Bumped by every note, so an exhausted claim does not forget a group that got work meanwhile. */
  readonly #groupNotes = new Map<string, number>();
  /** Groups that may hold jobs due later (retries, discovered rows): exhaustion checks the table first. */
  readonly #mayHaveFuture = new Set<string>();
  #discoveredAt = Number.NEGATIVE_INFINITY;
  // 6 columns a row; stay well below SQLite's bound-parameter limit.
  readonly #jobInserts = new InsertTemplate<Insertable<QueueJobsTable>>(
    (rows) =>
      this.#opts.db
        .insertInto("queue_jobs")
        .values(rows)
        .onConflict((oc) => oc.column("id").doNothing()),
    ["id", "queue", "group_key", "run_at", "locked_until", "created_at"],
    512,
  );
  readonly #jobDeletes = new QueryTemplate<string[]>({
    build: (ids) => this.#opts.db.deleteFrom("queue_jobs").where("id", "in", ids),
    shape: (ids) => ids.length,
    parameters: (ids) => ids,
  });
  /** Leases up to `limit` due jobs of one group, oldest first; built per group on every claim round. */
  readonly #claims = new QueryTemplate<{ group: string; limit: number; now: number; lockedUntil: number }>({
    build: ({ group, limit, now, lockedUntil }) =>
      this.#opts.db
        .updateTable("queue_jobs")
        .set({ locked_until: lockedUntil })
        .where("id", "in", (eb) =>
          eb
            .selectFrom("queue_jobs")
            .select("id")
            .where("queue", "=", this.#opts.queueName)
            .where("group_key", "=", group)
            .where("run_at", "<=", now)
            .where("locked_until", "<=", now)
            .orderBy("run_at")
            .limit(limit),
        )
        .returning(["id", "group_key"]),
    shape: () => 0,
    parameters: ({ group, limit, now, lockedUntil }) => [
      lockedUntil,
      this.#opts.queueName,
      group,
      now,
      now,
      limit,
    ],
  });
  readonly #jobReschedules = new QueryTemplate<{ id: string; runAtMs: number }>({
    build: ({ id, runAtMs }) =>
      this.#opts.db.updateTable("queue_jobs").set({ run_at: runAtMs, locked_until: 0 }).where("id", "=", id),
    shape: () => 0,
    parameters: ({ id, runAtMs }) => [runAtMs, 0, id],
  });

  constructor(options: EmbeddedQueueOptions) {
    this.#opts = { queueName: "delivery", pollIntervalMs: 250, ...options };
    // Acks go to SQLite's thread in order, so the next batch may be sent while one is written.
    this.#acks = new BatchWriter((acks) => this.#applyAcks(acks), { maxInFlight: 2 });
  }

  stage(jobs: readonly DeliveryJob[]): CompiledQuery[] {
    return this.#insertQueries(jobs);
  }

  async afterCommit(jobs: readonly DeliveryJob[]): Promise<void> {
    for (const job of jobs) this.#noteWork(job.endpointId, job.runAtMs);
    this.#wake();
  }

  async enqueue(jobs: readonly DeliveryJob[]): Promise<void> {
    await this.#opts.storage.executeBatch(this.#insertQueries(jobs));
    for (const job of jobs) this.#noteWork(job.endpointId, job.runAtMs);
    this.#wake();
  }

  #noteWork(group: string, runAtMs: number): void {
    const known = this.#groups.get(group);
    if (known === undefined || runAtMs < known) this.#groups.set(group, runAtMs);
    if (runAtMs > this.#opts.clock.now()) this.#mayHaveFuture.add(group);
    this.#groupNotes.set(group, (this.#groupNotes.get(group) ?? 0) + 1);
  }

  /** Every group with a job that is not leased, and when its first one is due. */
  async #discover(): Promise<void> {
    this.#discoveredAt = performance.now();
    const now = this.#opts.clock.now();
    const rows = await this.#opts.db
      .selectFrom("queue_jobs")
      .select((eb) => ["group_key", eb.fn.min("run_at").as("next")])
      .where("queue", "=", this.#opts.queueName)
      .where("locked_until", "<=", now)
      .groupBy("group_key")
      .execute();
    for (const row of rows) {
      this.#noteWork(row.group_key, Number(row.next));
      this.#mayHaveFuture.add(row.group_key);
    }
  }

  async startConsumer(handler: JobHandler): Promise<void> {
    this.#handler = handler;
    // Only one consumer uses this database, so every lease still held belongs to a process that died.
    await this.#opts.db
      .updateTable("queue_jobs")
      .set({ locked_until: 0 })
      .where("queue", "=", this.#opts.queueName)
      .execute();
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
    await this.#acks.flush();
    return claimed;
  }

  isReady(): boolean {
    return !this.#closing;
  }

  async close(graceMs = 10_000): Promise<void> {
    this.#closing = true;
    this.#wake();
    await this.#loop;
    const drained = Promise.all(this.#inFlight.values()).then(() => true);
    const timedOut = new Promise<false>((resolve) => setTimeout(resolve, graceMs, false).unref());
    if (!(await Promise.race([drained, timedOut]))) {
      // Release what did not finish so the next start delivers it again instead of waiting for the lease.
      const ids = [...this.#inFlight.keys()];
      this.#opts.logger.warn({ jobs: ids.length }, "releasing unfinished deliveries at shutdown");
      await this.#opts.db.updateTable("queue_jobs").set({ locked_until: 0 }).where("id", "in", ids).execute();
    }
    await this.#acks.flush();
  }

  /** Jobs waiting or leased; for metrics and tests. */
  async depth(): Promise<number> {
    const row = await this.#opts.db
      .selectFrom("queue_jobs")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("queue", "=", this.#opts.queueName)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  #insertQueries(jobs: readonly DeliveryJob[]): CompiledQuery[] {
    const now = this.#opts.clock.now();
    const queue = this.#opts.queueName;
    return this.#jobInserts.compile(
      jobs.map((job) => ({
        id: job.logId,
        queue,
        group_key: job.endpointId,
        run_at: job.runAtMs,
        locked_until: 0,
        created_at: now,
      })),
    );
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
    const capacity = this.#opts.concurrency - this.#inFlight.size;
    if (capacity <= 0 || !this.#handler) {
      this.#backlogPossible = true;
      return 0;
    }
    // Claim in batches: a claim is a write, and one per finished job would make it the bottleneck.
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
      const free = groupConcurrency - (this.#inFlightPerGroup.get(group) ?? 0);
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
    const lockedUntil = now + this.#opts.leaseMs;
    const results = await Promise.all(
      plan.map(async ({ group, limit }) => {
        const claim = this.#claims.compile({ group, limit, now, lockedUntil });
        const { rows } = await this.#opts.db.executeQuery<{ id: string; group_key: string }>(claim);
        return rows;
      }),
    );
    let claimed = 0;
    let more = left === 0 || plan.length === MAX_GROUPS_PER_FILL || dueButFull;
    const exhausted: { group: string; notes: number }[] = [];
    plan.forEach(({ group, limit, notes }, index) => {
      const rows = results[index]!;
      for (const job of rows) this.#start(job.id, job.group_key);
      claimed += rows.length;
      this.#groups.delete(group);
      if (rows.length === limit) {
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

  /** When the group's next job that is not leased is due, or null if it has none. */
  async #nextDue(group: string, now: number): Promise<number | null> {
    const row = await this.#opts.db
      .selectFrom("queue_jobs")
      .select((eb) => eb.fn.min("run_at").as("next"))
      .where("queue", "=", this.#opts.queueName)
      .where("group_key", "=", group)
      .where("locked_until", "<=", now)
      .executeTakeFirst();
    return row?.next === null || row?.next === undefined ? null : Number(row.next);
  }

  #start(id: string, group: string): void {
    const handler = this.#handler!;
    this.#inFlightPerGroup.set(group, (this.#inFlightPerGroup.get(group) ?? 0) + 1);
    const run = handler({ logId: id, endpointId: group })
      .catch((error: unknown): JobOutcome => {
        // A handler that throws hit an infrastructure fault; try again later rather than lose the job.
        this.#opts.logger.error(
          { err: error, jobId: id },
          "delivery job failed unexpectedly; retrying in 30 s",
        );
        return { kind: "retry", runAtMs: this.#opts.clock.now() + 30_000 };
      })
      .then((outcome) => {
        if (outcome.kind === "retry") this.#noteWork(group, outcome.runAtMs);
        // The slot is free once the handler is done; the job stays leased until its ack commits, so it
        // cannot be claimed again meanwhile (and after a crash it runs again, which the handler tolerates).
        this.#acks.submit({ id, outcome }).catch((error: unknown) => {
          this.#opts.logger.error({ err: error, jobId: id }, "acknowledging job failed; it will run again");
        });
      })
      .finally(() => {
        this.#inFlight.delete(id);
        const left = (this.#inFlightPerGroup.get(group) ?? 1) - 1;
        if (left === 0) this.#inFlightPerGroup.delete(group);
        else this.#inFlightPerGroup.set(group, left);
        if (this.#backlogPossible) this.#wake();
      });
    this.#inFlight.set(id, run);
  }

  async #applyAcks(acks: Ack[]): Promise<void> {
    const done = acks.filter((ack) => ack.outcome.kind === "done").map((ack) => ack.id);
    const queries: CompiledQuery[] = [];
    for (const ids of paddedInLists(done, 512)) queries.push(this.#jobDeletes.compile(ids));
    for (const ack of acks) {
      if (ack.outcome.kind !== "retry") continue;
      queries.push(this.#jobReschedules.compile({ id: ack.id, runAtMs: ack.outcome.runAtMs }));
    }
    await this.#opts.storage.executeBatch(queries);
  }
}
