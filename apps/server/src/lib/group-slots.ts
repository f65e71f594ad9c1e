/**
 * At most `perGroup` holders per group (endpoint) at a time, within this process. A caller may wait a
 * little for a slot: a busy but fast endpoint frees one within milliseconds, so the job need not be
 * handed back to the queue; a hung endpoint does not, and the caller gives up after `maxWaitMs`.
 */
export class GroupSlots {
  readonly #held = new Map<string, number>();
  readonly #waiters = new Map<string, (() => void)[]>();

  constructor(private readonly perGroup: number) {}

  /** Resolves true with a slot taken, or false if none freed up within `maxWaitMs`. */
  acquire(group: string, maxWaitMs: number): Promise<boolean> | boolean {
    const held = this.#held.get(group) ?? 0;
    if (held < this.perGroup) {
      this.#held.set(group, held + 1);
      return true;
    }
    if (maxWaitMs <= 0) return false;
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
      next();
      return;
    }
    const left = (this.#held.get(group) ?? 1) - 1;
    if (left <= 0) this.#held.delete(group);
    else this.#held.set(group, left);
  }

  held(group: string): number {
    return this.#held.get(group) ?? 0;
  }
}
