/**
 * S3: ingest→receipt latency (p50/p99/p99.9) at 25, 50 and 75 % of the measured ingest ceiling (S1's median in
 * embedded mode, S1-scale's in scale mode) and, supplementary, at 10 %; open loop, one fresh Mitte per level.
 */
import {
  log,
  measureUndisturbed,
  noteServerOutput,
  repeatBudget,
  type ScaleInfra,
  section,
  waitForQuiet,
} from "./common.js";
import { type Mode, startRunningMitte } from "./deploy.js";
import { logLatency, measureLatency, startRecordingSink } from "./latency.js";
import type { S3Level, S3Result, Verdict } from "./report.js";
import { fmtLatency } from "./report.js";
import { fmtInt } from "./stats.js";

/**
 * The issue's 25/50/75 % of the ceiling, and 10 % as a supplementary level (it replaces the former S3b): a rate
 * at which Mitte keeps up with ingest and delivery, to separate the latency it adds from backlog queueing.
 */
export const S3_FRACTIONS = [0.1, 0.25, 0.5, 0.75] as const;
/** Issue 6: p99 at 50 % of the ceiling ≤ 50 ms embedded, ≤ 100 ms in scale mode. */
export const S3_P99_GOAL_MS: Record<Mode, number> = { embedded: 50, scale: 100 };
const S3_GOAL_FRACTION = 0.5;
/** Per mode: disturbed levels measured again, at most this many. */
const S3_MAX_REPEATS = 2;

/** Embedded: delivery on, 64 in flight per endpoint (one endpoint). Scale: the worker as in S4-scale. */
const S3_ENV: Record<Mode, Record<string, string>> = {
  embedded: { MITTE_ENDPOINT_CONCURRENCY: "64" },
  scale: { MITTE_DELIVERY_CONCURRENCY: "64", MITTE_ENDPOINT_CONCURRENCY: "64" },
};

async function s3Level(
  mode: Mode,
  fraction: number,
  ceilingPerSec: number,
  infra: ScaleInfra | undefined,
): Promise<S3Level> {
  const label = `S3${mode === "scale" ? "-scale" : ""} ${Math.round(fraction * 100)} %`;
  const ratePerSec = Math.max(1, Math.round(ceilingPerSec * fraction));
  log(`${label}: ${fmtInt(ratePerSec)} req/s`);
  const { sink, recorder } = await startRecordingSink(ratePerSec);
  try {
    const mitte = await startRunningMitte(mode, `s3-${Math.round(fraction * 100)}`, S3_ENV[mode], infra);
    let measured: Omit<S3Level, "shutdown">;
    let shutdown: string;
    try {
      const endpoint = await mitte.createEndpoint(`${sink.url}/s3`);
      await waitForQuiet(label);
      const figures = await measureLatency({
        origin: mitte.origin,
        slugs: [endpoint.slug],
        ratePerSec,
        recorder,
        cpuPids: mitte.cpuPids(),
        beforeWindow: () => mitte.beforeWindow(),
      });
      logLatency(figures);
      for (const { name, proc } of mitte.processes) noteServerOutput(label, proc.output, name);
      measured = { ...figures, mode, fraction, serverLogLines: mitte.logLines() };
    } finally {
      shutdown = await mitte.close();
    }
    return { ...measured, shutdown };
  } finally {
    await sink.close();
  }
}

export async function runS3(
  mode: Mode,
  ceilingPerSec: number,
  ceilingSource: string,
  infra?: ScaleInfra,
): Promise<S3Result> {
  section(
    `S3${mode === "scale" ? "-scale" : ""} ingest→receipt latency — open loop at ${S3_FRACTIONS.map(
      (f) => `${Math.round(f * 100)} %`,
    ).join(", ")} of ${fmtInt(ceilingPerSec)} req/s (${ceilingSource})`,
  );
  const levels: S3Level[] = [];
  const discarded: S3Level[] = [];
  const repeats = repeatBudget(S3_MAX_REPEATS, 30);
  for (const fraction of S3_FRACTIONS) {
    levels.push(
      await measureUndisturbed(
        () => s3Level(mode, fraction, ceilingPerSec, infra),
        repeats,
        discarded,
        () => {},
      ),
    );
  }
  return { mode, ceilingPerSec, ceilingSource, levels, discarded, goalFraction: S3_GOAL_FRACTION };
}

export function s3Verdict(s3: S3Result): Verdict {
  const goalMs = S3_P99_GOAL_MS[s3.mode];
  const level = s3.levels.find((l) => l.fraction === s3.goalFraction);
  if (!level) return { goal: `p99 ≤ ${goalMs} ms at 50 %`, measured: "not measured", met: false };
  const clean = level.errors === 0 && Object.keys(level.non202).length === 0;
  const notes = [
    ...(level.censored > 0
      ? [
          `S3${s3.mode === "scale" ? "-scale" : ""} 50 %: ${fmtInt(level.censored)} of ${fmtInt(
            level.expected,
          )} accepted webhooks had not reached the sink ${level.drainMaxMs / 1000} s after the last send; they count with a lower-bound latency.`,
        ]
      : []),
    ...(clean
      ? []
      : [
          `S3${s3.mode === "scale" ? "-scale" : ""} 50 %: ${level.errors} transport errors, non-202: ${JSON.stringify(
            level.non202,
          )}; counted as missed.`,
        ]),
  ];
  return {
    goal: `p99 ≤ ${goalMs} ms at 50 %`,
    measured: `p99 ${fmtLatency(level.latency.p99, level)}`,
    met: clean && level.latency.p99 <= goalMs,
    ...(notes.length > 0 ? { note: notes.join(" ") } : {}),
  };
}
