interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: callers submit items and get a promise that settles once the batch holding their item
 * was applied (one transaction for many items). Batches run one at a time, in submission order, so a
 * later item never commits before an earlier one. Under light load a batch is a single item and the
 * only added latency is one turn of the event loop.
 */
export class BatchWriter<T> {
  #pending: Pending<T>[] = [];
  #running = false;
  #idleWaiters: (() => void)[] = [];

  constructor(
    private readonly apply: (items: T[]) => Promise<void>,
    private readonly maxBatch = 500,
  ) {}

  submit(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (!this.#running) {
        this.#running = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  /** Resolves when everything submitted so far has been applied (or failed). */
  flush(): Promise<void> {
    if (!this.#running && this.#pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  get size(): number {
    return this.#pending.length;
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.maxBatch);
      try {
        await this.apply(batch.map((entry) => entry.item));
        for (const entry of batch) entry.resolve();
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    this.#running = false;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
