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

export class BullmqPeriodicJobs implements PeriodicJobs {
  readonly #jobs = new Map<string, { everyMs: number; run: () => Promise<unknown> }>();
  readonly #queue: Queue;
  #worker: Worker | undefined;

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
    for (const [name, job] of this.#jobs) {
      await this.#queue.upsertJobScheduler(name, { every: job.everyMs }, { name });
    }
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
    await this.#worker?.close();
    await this.#queue.close();
  }
}
