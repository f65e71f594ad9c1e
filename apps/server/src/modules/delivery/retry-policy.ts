/** Base of the exponential backoff: 5 s, 10 s, 20 s, 40 s before attempts 2–5. */
export const BACKOFF_BASE_MS = 5_000;
/** ±10 % jitter so retries of many webhooks failing together do not arrive together. */
export const BACKOFF_JITTER = 0.1;
/** A target's Retry-After is honoured up to this long. */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/**
 * Delay before the next attempt after attempt `failedAttempt` (1-based) failed.
 * `random` is in [0, 1); 0.5 gives the table value exactly.
 */
export function backoffDelayMs(failedAttempt: number, random: number): number {
  const base = BACKOFF_BASE_MS * 2 ** (failedAttempt - 1);
  return Math.round(base * (1 + BACKOFF_JITTER * (2 * random - 1)));
}

/** Parses Retry-After (seconds or HTTP date) into milliseconds from now, capped; null when absent or invalid. */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  // Delay-seconds, or an HTTP date (which always names a weekday or month, so it has letters).
  const ms = /^\d+$/.test(trimmed)
    ? Number(trimmed) * 1000
    : /[a-z]/i.test(trimmed)
      ? Date.parse(trimmed) - nowMs
      : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0) return null;
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** The later of the backoff and the target's own Retry-After. */
export function nextAttemptDelayMs(
  failedAttempt: number,
  random: number,
  retryAfterMs: number | null,
): number {
  const backoff = backoffDelayMs(failedAttempt, random);
  return retryAfterMs === null ? backoff : Math.max(backoff, retryAfterMs);
}
