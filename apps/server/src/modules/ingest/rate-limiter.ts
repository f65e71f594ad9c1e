export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Unix seconds when the current window ends. */
  resetSeconds: number;
  /** Seconds until a blocked caller may try again; set when `allowed` is false. */
  retryAfterSeconds?: number;
}

/** Port: the embedded adapter keeps counters in memory; scale mode keeps them in Redis. */
export interface RateLimiter {
  hit(key: string, nowMs: number): RateLimitDecision | Promise<RateLimitDecision>;
}

interface WindowState {
  windowStart: number;
  current: number;
  previous: number;
  blockedUntil: number;
}

/**
 * Sliding-window counter (the weighted two-window approximation used by Cloudflare and Upstash): the
 * estimate is `previous × (1 − elapsed/window) + current`. Exceeding the limit blocks the key for
 * `blockMs`, during which every hit is refused at once, as the product's rate-limit docs describe.
 * Hand-written because the common libraries offer fixed windows, and the Redis adapter runs the same
 * arithmetic in a Lua script.
 */
export class MemoryRateLimiter implements RateLimiter {
  readonly #states = new Map<string, WindowState>();
  #hitsSinceSweep = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly blockMs = 120_000,
  ) {}

  hit(key: string, nowMs: number): RateLimitDecision {
    if (++this.#hitsSinceSweep >= 10_000) this.#sweep(nowMs);
    const windowStart = nowMs - (nowMs % this.windowMs);
    let state = this.#states.get(key);
    if (!state) {
      state = { windowStart, current: 0, previous: 0, blockedUntil: 0 };
      this.#states.set(key, state);
    } else if (state.windowStart !== windowStart) {
      state.previous = windowStart - state.windowStart === this.windowMs ? state.current : 0;
      state.current = 0;
      state.windowStart = windowStart;
    }
    const resetSeconds = Math.ceil((windowStart + this.windowMs) / 1000);
    if (state.blockedUntil > nowMs) {
      return this.#refuse(resetSeconds, Math.ceil((state.blockedUntil - nowMs) / 1000));
    }
    const elapsed = (nowMs - windowStart) / this.windowMs;
    const estimate = state.previous * (1 - elapsed) + state.current;
    if (estimate + 1 > this.limit) {
      state.blockedUntil = nowMs + this.blockMs;
      return this.#refuse(resetSeconds, Math.ceil(this.blockMs / 1000));
    }
    state.current += 1;
    return {
      allowed: true,
      limit: this.limit,
      remaining: Math.max(0, Math.floor(this.limit - estimate - 1)),
      resetSeconds,
    };
  }

  #refuse(resetSeconds: number, retryAfterSeconds: number): RateLimitDecision {
    return {
      allowed: false,
      limit: this.limit,
      remaining: 0,
      resetSeconds,
      retryAfterSeconds: Math.max(1, retryAfterSeconds),
    };
  }

  /** Forget keys idle for two windows and not blocked, so memory follows active callers only. */
  #sweep(nowMs: number): void {
    this.#hitsSinceSweep = 0;
    for (const [key, state] of this.#states) {
      if (state.blockedUntil <= nowMs && nowMs - state.windowStart >= 2 * this.windowMs)
        this.#states.delete(key);
    }
  }
}

/** Of two passing decisions, the one with fewer requests left fills the X-RateLimit-* headers. */
export function moreRestrictive(
  a: RateLimitDecision | null,
  b: RateLimitDecision | null,
): RateLimitDecision | null {
  if (!a) return b;
  if (!b) return a;
  return b.remaining < a.remaining ? b : a;
}
