interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface BatchWriterOptions {
  /** Items per batch at most. Default 500. */
  maxBatch?: number;
  /**
   * Batches applied at once. 1 (default) applies them strictly one after another. More lets the next batch
   * be prepared and sent while the previous one is written; use it only where batches are independent
   * (the storage keeps their start order, not necessarily their completion order).
   */
  maxInFlight?: number;
}

/**
 * Group commit: callers submit items and get a promise that settles once the batch holding their item
 * was applied (one transaction for many items). Batches start in submission order. Under light load a
 * batch is a single item and the only added latency is one turn of the event loop.
 */
export class BatchWriter<T> {
  #pending: Pending<T>[] = [];
  #inFlight = 0;
  #scheduled = false;
  #idleWaiters: (() => void)[] = [];
  readonly #maxBatch: number;
  readonly #maxInFlight: number;

  constructor(
    private readonly apply: (items: T[]) => Promise<void>,
    options: BatchWriterOptions = {},
  ) {
    this.#maxBatch = options.maxBatch ?? 500;
    this.#maxInFlight = options.maxInFlight ?? 1;
  }

  submit(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when everything submitted so far has been applied (or failed). */
  flush(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  get size(): number {
    return this.#pending.length;
  }

  #idle(): boolean {
    return this.#inFlight === 0 && this.#pending.length === 0 && !this.#scheduled;
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    // One turn of the event loop lets concurrent requests join the batch.
    setImmediate(() => {
      this.#scheduled = false;
      this.#startBatches();
    });
  }

  #startBatches(): void {
    while (this.#pending.length > 0 && this.#inFlight < this.#maxInFlight) {
      const batch = this.#pending.splice(0, this.#maxBatch);
      this.#inFlight++;
      this.apply(batch.map((entry) => entry.item))
        .then(
          () => {
            for (const entry of batch) entry.resolve();
          },
          (error: unknown) => {
            for (const entry of batch) entry.reject(error);
          },
        )
        .finally(() => {
          this.#inFlight--;
          if (this.#pending.length > 0) this.#schedule();
          else if (this.#idle()) for (const resolve of this.#idleWaiters.splice(0)) resolve();
        });
    }
  }
}
