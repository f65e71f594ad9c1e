/** Documented thresholds: z-score over 48 hours of hourly failure rates, or a plain high failure rate. */
export const Z_SCORE_THRESHOLD = 2.5;
export const HIGH_FAILURE_RATE = 0.8;
export const HIGH_FAILURE_MIN_REQUESTS = 10;
export const MIN_HISTORY_HOURS = 6;
export const HISTORY_HOURS = 48;
/**
 * Floor of the standard deviation (5 percentage points). Without it an endpoint that never failed has a
 * deviation of 0 and a single failure would be an "infinite" anomaly.
 */
export const MIN_STD_DEV = 0.05;

export interface HourCounts {
  requests: number;
  failures: number;
}

export type AnomalyVerdict =
  | {
      fire: false;
      reason: "no_requests" | "not_enough_history" | "normal";
      failureRate: number;
      zScore: number | null;
      historyHours: number;
    }
  | {
      fire: true;
      reason: "z_score" | "failure_rate";
      failureRate: number;
      zScore: number;
      historyHours: number;
    };

/**
 * Compares the current hour's failure rate with the hourly failure rates of the previous 48 hours. Hours
 * without requests carry no rate and are left out; at least 6 hours with requests are needed.
 */
export function evaluateAnomaly(history: readonly HourCounts[], current: HourCounts): AnomalyVerdict {
  const rates = history.filter((hour) => hour.requests > 0).map((hour) => hour.failures / hour.requests);
  const failureRate = current.requests > 0 ? current.failures / current.requests : 0;
  if (current.requests === 0)
    return { fire: false, reason: "no_requests", failureRate, zScore: null, historyHours: rates.length };
  if (rates.length < MIN_HISTORY_HOURS)
    return {
      fire: false,
      reason: "not_enough_history",
      failureRate,
      zScore: null,
      historyHours: rates.length,
    };
  const mean = rates.reduce((sum, rate) => sum + rate, 0) / rates.length;
  const variance = rates.reduce((sum, rate) => sum + (rate - mean) ** 2, 0) / rates.length;
  const zScore = (failureRate - mean) / Math.max(Math.sqrt(variance), MIN_STD_DEV);
  if (zScore > Z_SCORE_THRESHOLD)
    return { fire: true, reason: "z_score", failureRate, zScore, historyHours: rates.length };
  if (failureRate > HIGH_FAILURE_RATE && current.requests >= HIGH_FAILURE_MIN_REQUESTS) {
    return { fire: true, reason: "failure_rate", failureRate, zScore, historyHours: rates.length };
  }
  return { fire: false, reason: "normal", failureRate, zScore, historyHours: rates.length };
}
