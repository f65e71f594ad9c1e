/**
 * At most `perGroup` holders per group (endpoint) at a time, within this process. A caller may wait a
 * little for a slot: a busy but fast endpoint frees one within milliseconds, so the job need not be
 * handed back to the queue. A hung endpoint does not: once a full group has freed nothing for
 * `maxWaitMs`, callers are refused at once, since each waiter holds a worker slot that other endpoints'
 * jobs could use (S8-scale: waiting 200 ms per job of a hung endpoint starved the healthy ones).
 */
export class GroupSlots {
  readonly #held = new Map<string, number>();
  readonly #waiters = new Map<string, (() => void)[]>();
  /** Per full group: when it last freed a slot, or became full. */
  readonly #progressAt = new Map<string, number>();

  constructor(
    private readonly perGroup: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Resolves true with a slot taken, or false if none freed up within `maxWaitMs`. */
  acquire(group: string, maxWaitMs: number): Promise<boolean> | boolean {
    const held = this.#held.get(group) ?? 0;
    if (held < this.perGroup) {
      this.#held.set(group, held + 1);
      if (held + 1 === this.perGroup) this.#progressAt.set(group, this.now());
      return true;
    }
    if (maxWaitMs <= 0 || this.stalledForMs(group) >= maxWaitMs) return false;
    return new Promise((resolve) => {
      const queue = this.#waiters.get(group) ?? [];
      this.#waiters.set(group, queue);
      const grant = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const index = queue.indexOf(grant);
        if (index !== -1) queue.splice(index, 1);
        if (queue.length === 0) this.#waiters.delete(group);
        resolve(false);
      }, maxWaitMs);
      queue.push(grant);
    });
  }

  /** Frees a slot; a waiter of the same group takes it over directly. */
  release(group: string): void {
    const queue = this.#waiters.get(group);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.#waiters.delete(group);
    if (next) {
      this.#progressAt.set(group, this.now());
      next();
      return;
    }
    this.#progressAt.delete(group);
    const left = (this.#held.get(group) ?? 1) - 1;
    if (left <= 0) this.#held.delete(group);
    else this.#held.set(group, left);
  }

  /** How long a full group has gone without freeing a slot; 0 when it has one free. */
  stalledForMs(group: string): number {
    const since = this.#progressAt.get(group);
    return since === undefined ? 0 : Math.max(0, this.now() - since);
  }

  held(group: string): number {
    return this.#held.get(group) ?? 0;
  }
}
