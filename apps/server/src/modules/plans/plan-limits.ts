import type { Plan } from "../../storage/schema.js";

/** Every plan-dependent number lives here and nowhere else. */
export interface PlanLimits {
  /** Delivery attempts per webhook, the first one included. */
  maxAttempts: number;
  logRetentionMs: number;
  monthlyRequests: number;
  /** 90 % of the monthly quota: the QUOTA_WARNING threshold. */
  quotaWarningRequests: number;
  maxEndpoints: number;
  aiExplainsPerDay: number;
  aiTransformsPerDay: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export const planLimits: Readonly<Record<Plan, PlanLimits>> = {
  free: {
    maxAttempts: 1,
    logRetentionMs: 3 * DAY_MS,
    monthlyRequests: 5_000,
    quotaWarningRequests: 4_500,
    maxEndpoints: 3,
    aiExplainsPerDay: 5,
    aiTransformsPerDay: 3,
  },
  pro: {
    maxAttempts: 5,
    logRetentionMs: 14 * DAY_MS,
    monthlyRequests: 250_000,
    quotaWarningRequests: 225_000,
    maxEndpoints: 100,
    aiExplainsPerDay: 100,
    aiTransformsPerDay: 50,
  },
};

export const TRIAL_LENGTH_MS = 14 * DAY_MS;

/** A user on a running Pro trial gets Pro limits; afterwards the stored plan applies. */
export function effectivePlan(user: { plan: Plan; trial_ends_at: number | null }, nowMs: number): Plan {
  if (user.plan === "free" && user.trial_ends_at !== null && user.trial_ends_at > nowMs) return "pro";
  return user.plan;
}

export function limitsFor(user: { plan: Plan; trial_ends_at: number | null }, nowMs: number): PlanLimits {
  return planLimits[effectivePlan(user, nowMs)];
}

/** Test webhooks always get exactly one attempt, whatever the plan. */
export function maxAttemptsFor(limits: PlanLimits, isTest: boolean): number {
  return isTest ? 1 : limits.maxAttempts;
}

let cachedPeriod = { fromMs: 0, toMs: 0, period: "" };

/** Quota periods are calendar months in UTC, e.g. "2026-11". (Called per request: the month is cached.) */
export function usagePeriod(nowMs: number): string {
  if (nowMs >= cachedPeriod.fromMs && nowMs < cachedPeriod.toMs) return cachedPeriod.period;
  const now = new Date(nowMs);
  const fromMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  cachedPeriod = { fromMs, toMs: nextPeriodStartMs(nowMs), period: now.toISOString().slice(0, 7) };
  return cachedPeriod.period;
}

/** First millisecond of the next UTC month: when the quota resets. */
export function nextPeriodStartMs(nowMs: number): number {
  const now = new Date(nowMs);
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
}
