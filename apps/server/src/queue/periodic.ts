import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";

/**
 * Periodic jobs (retention, reconciliation, later anomaly detection). Each runs once per period:
 * in embedded mode there is one process and a timer; in scale mode BullMQ job schedulers hand each
 * period's run to exactly one worker of the fleet.
 */
export interface PeriodicJobs {
  schedule(name: string, everyMs: number, run: () => Promise<unknown>): void;
  start(): Promise<void>;
  close(): Promise<void>;
}

export class TimerPeriodicJobs implements PeriodicJobs {
  readonly #jobs: { name: string; everyMs: number; run: () => Promise<unknown> }[] = [];
  readonly #timers: NodeJS.Timeout[] = [];

  constructor(private readonly logger: Logger) {}

  schedule(name: string, everyMs: number, run: () => Promise<unknown>): void {
    this.#jobs.push({ name, everyMs, run });
  }

  async start(): Promise<void> {
    for (const job of this.#jobs) {
      const tick = () =>
        void job
          .run()
          .catch((error: unknown) => this.logger.error({ err: error, job: job.name }, "periodic job failed"));
      tick();
      const timer = setInterval(tick, job.everyMs);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
  }
}

const SCHEDULER_REFRESH_MS = 5_000;

export class BullmqPeriodicJobs implements PeriodicJobs {
  readonly #jobs = new Map<string, { everyMs: number; run: () => Promise<unknown> }>();
  readonly #queue: Queue;
  #worker: Worker | undefined;
  #refresh: NodeJS.Timeout | undefined;

  constructor(
    connection: Redis,
    private readonly createWorkerConnection: () => Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.#queue = new Queue("maintenance", {
      connection,
      prefix,
      streams: { events: { maxLen: 100 } },
      defaultJobOptions: { removeOnComplete: true, removeOnFail: { count: 100 } },
    });
    this.#queue.on("error", (error) => logger.warn({ err: error }, "maintenance queue error"));
  }

  schedule(name: string, everyMs: number, run: () => Promise<unknown>): void {
    this.#jobs.set(name, { everyMs, run });
  }

  async start(): Promise<void> {
    await this.#upsertSchedulers();
    // Schedulers live in Redis: if Redis restarts without persistence they are gone, and the reconciler
    // with them. Re-declaring them now and then (idempotent) brings them back.
    this.#refresh = setInterval(() => {
      this.#upsertSchedulers().catch((error: unknown) =>
        this.logger.debug({ err: error }, "re-declaring schedulers failed"),
      );
    }, SCHEDULER_REFRESH_MS);
    this.#refresh.unref();
    this.#worker = new Worker(
      "maintenance",
      async (job) => {
        const entry = this.#jobs.get(job.name);
        if (entry) await entry.run();
      },
      {
        connection: this.createWorkerConnection(),
        prefix: this.prefix,
        concurrency: 2,
        maxStalledCount: 1_000,
      },
    );
    this.#worker.on("error", (error) => this.logger.warn({ err: error }, "maintenance worker error"));
    this.#worker.on("failed", (job, error) =>
      this.logger.error({ err: error, job: job?.name }, "periodic job failed"),
    );
  }

  async close(): Promise<void> {
    clearInterval(this.#refresh);
    await this.#worker?.close();
    await this.#queue.close();
  }

  async #upsertSchedulers(): Promise<void> {
    for (const [name, job] of this.#jobs) {
      await this.#queue.upsertJobScheduler(name, { every: job.everyMs }, { name });
    }
  }
}
