import type { CompiledQuery, Kysely } from "kysely";
import type { Logger } from "pino";
import { BatchWriter } from "../../lib/batch-writer.js";
import type { Clock } from "../../lib/clock.js";
import type { Database } from "../../storage/schema.js";
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

  constructor(options: EmbeddedQueueOptions) {
    this.#opts = { queueName: "delivery", pollIntervalMs: 250, ...options };
    // Acks go to SQLite's thread in order, so the next batch may be sent while one is written.
    this.#acks = new BatchWriter((acks) => this.#applyAcks(acks), { maxInFlight: 2 });
  }

  stage(jobs: readonly DeliveryJob[]): CompiledQuery[] {
    return this.#insertQueries(jobs);
  }

  async afterCommit(): Promise<void> {
    this.#wake();
  }

  async enqueue(jobs: readonly DeliveryJob[]): Promise<void> {
    await this.#opts.storage.executeBatch(this.#insertQueries(jobs));
    this.#wake();
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
    const rows = jobs.map((job) => ({
      id: job.logId,
      queue: this.#opts.queueName,
      group_key: job.endpointId,
      run_at: job.runAtMs,
      locked_until: 0,
      created_at: now,
    }));
    const queries: CompiledQuery[] = [];
    // 6 columns a row; stay well below SQLite's bound-parameter limit.
    for (let start = 0; start < rows.length; start += 1000) {
      queries.push(
        this.#opts.db
          .insertInto("queue_jobs")
          .values(rows.slice(start, start + 1000))
          .onConflict((oc) => oc.column("id").doNothing())
          .compile(),
      );
    }
    return queries;
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
    const now = this.#opts.clock.now();
    const saturated = [...this.#inFlightPerGroup]
      .filter(([, count]) => count >= this.#opts.groupConcurrency)
      .map(([group]) => group);
    const claimed = await this.#opts.db
      .updateTable("queue_jobs")
      .set({ locked_until: now + this.#opts.leaseMs })
      .where("id", "in", (eb) => {
        let due = eb
          .selectFrom("queue_jobs")
          .select("id")
          .where("queue", "=", this.#opts.queueName)
          .where("run_at", "<=", now)
          .where("locked_until", "<=", now);
        if (saturated.length > 0) due = due.where("group_key", "not in", saturated);
        return due.orderBy("run_at").limit(capacity);
      })
      .returning(["id", "group_key"])
      .execute();

    const excess: string[] = [];
    for (const job of claimed) {
      const running = this.#inFlightPerGroup.get(job.group_key) ?? 0;
      if (running >= this.#opts.groupConcurrency) {
        excess.push(job.id);
        continue;
      }
      this.#start(job.id, job.group_key);
    }
    this.#backlogPossible = claimed.length === capacity || saturated.length > 0 || excess.length > 0;
    if (excess.length > 0) {
      await this.#opts.db
        .updateTable("queue_jobs")
        .set({ locked_until: 0 })
        .where("id", "in", excess)
        .execute();
    }
    return claimed.length - excess.length;
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
    const { db } = this.#opts;
    const done = acks.filter((ack) => ack.outcome.kind === "done").map((ack) => ack.id);
    const queries: CompiledQuery[] = [];
    for (let start = 0; start < done.length; start += 500) {
      queries.push(
        db
          .deleteFrom("queue_jobs")
          .where("id", "in", done.slice(start, start + 500))
          .compile(),
      );
    }
    for (const ack of acks) {
      if (ack.outcome.kind !== "retry") continue;
      queries.push(
        db
          .updateTable("queue_jobs")
          .set({ run_at: ack.outcome.runAtMs, locked_until: 0 })
          .where("id", "=", ack.id)
          .compile(),
      );
    }
    await this.#opts.storage.executeBatch(queries);
  }
}
