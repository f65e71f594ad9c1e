/**
 * S8: one hung target beside healthy ones. Four healthy endpoints get a fixed open-loop rate; in the runs "with"
 * a fifth endpoint, whose target accepts connections and never answers, gets its equal share on top (so the
 * healthy endpoints' traffic is the same in both). Healthy ingest→receipt p99 with and without, interleaved
 * (without/with, with/without, …), one fresh Mitte per run, Mitte's default concurrency settings.
 */
import {
  affordable,
  log,
  noteServerOutput,
  QUIET_PCT,
  type ScaleInfra,
  section,
  spread,
  waitForQuiet,
} from "./common.js";
import { type Mode, startRunningMitte } from "./deploy.js";
import { logLatency, measureLatency, startRecordingSink } from "./latency.js";
import type { S8Result, S8Run, Verdict } from "./report.js";
import { startHungTarget } from "./sink.js";
import { fmtInt, fmtMs, fmtRatio, median } from "./stats.js";

export const S8_HEALTHY_ENDPOINTS = 4;
/**
 * Healthy traffic (all four endpoints together) as a fraction of the mode's measured ingest ceiling: low enough
 * that Mitte keeps up with ingest plus delivery even with the hung endpoint's share on top (at 25 % embedded Mitte
 * already builds a backlog, and the comparison would measure that backlog instead of the hung target's effect).
 */
export const S8_HEALTHY_FRACTION = 0.1;
/** Issue 6: healthy endpoints' p99 within 1.2× while one target hangs. */
export const S8_RATIO_GOAL = 1.2;
const S8_PAIRS = 3;
/** Pairs past the first two only while the time budget allows (seconds per pair). */
const S8_MIN_PAIRS = 2;
const S8_PAIR_COST_S: Record<Mode, number> = { embedded: 40, scale: 55 };
/** Mitte's defaults, written out: 128 deliveries in flight per process, 16 per endpoint, 30 s timeout. */
const S8_ENV = {
  MITTE_DELIVERY_CONCURRENCY: "128",
  MITTE_ENDPOINT_CONCURRENCY: "16",
  MITTE_DELIVERY_TIMEOUT_MS: "30000",
};

async function s8Run(
  mode: Mode,
  hung: boolean,
  healthyRatePerSec: number,
  pair: number,
  order: number,
  infra: ScaleInfra | undefined,
): Promise<S8Run> {
  const label = `${mode === "scale" ? "S8-scale" : "S8"} #${order} ${hung ? "with" : "without"} the hung target`;
  const endpoints = S8_HEALTHY_ENDPOINTS + (hung ? 1 : 0);
  const ratePerSec = Math.round((healthyRatePerSec * endpoints) / S8_HEALTHY_ENDPOINTS);
  log(`${label}: ${fmtInt(ratePerSec)} req/s over ${endpoints} endpoints`);
  const { sink, recorder } = await startRecordingSink(ratePerSec);
  const target = hung ? await startHungTarget() : null;
  try {
    const mitte = await startRunningMitte(mode, `s8-${order}`, S8_ENV, infra);
    let measured: Omit<S8Run, "shutdown">;
    let shutdown: string;
    try {
      const slugs: string[] = [];
      for (let i = 0; i < S8_HEALTHY_ENDPOINTS; i += 1) {
        slugs.push((await mitte.createEndpoint(`${sink.url}/s8-${i}`)).slug);
      }
      if (target) slugs.push((await mitte.createEndpoint(`${target.url}/hung`)).slug);
      await waitForQuiet(label);
      const figures = await measureLatency({
        origin: mitte.origin,
        slugs,
        delivers: slugs.map((_, i) => i < S8_HEALTHY_ENDPOINTS),
        ratePerSec,
        recorder,
        cpuPids: mitte.cpuPids(),
        beforeWindow: () => mitte.beforeWindow(),
      });
      logLatency(figures);
      const hungAccepted = target?.accepted() ?? 0;
      const hungOpen = target?.open() ?? 0;
      if (target) log(`hung target: ${hungAccepted} connections accepted, ${hungOpen} still open`);
      for (const { name, proc } of mitte.processes) noteServerOutput(label, proc.output, name);
      measured = {
        ...figures,
        mode,
        hung,
        pair,
        order,
        hungAccepted,
        hungOpen,
        serverLogLines: mitte.logLines(),
      };
      // Free Mitte's hung attempts before stopping it, so its shutdown does not wait for them.
      await target?.close();
    } finally {
      shutdown = await mitte.close();
    }
    return { ...measured, shutdown };
  } finally {
    await target?.close();
    await sink.close();
  }
}

export async function runS8(
  mode: Mode,
  ceilingPerSec: number,
  ceilingSource: string,
  infra?: ScaleInfra,
): Promise<S8Result> {
  const healthyRatePerSec = Math.max(S8_HEALTHY_ENDPOINTS, Math.round(ceilingPerSec * S8_HEALTHY_FRACTION));
  section(
    `${mode === "scale" ? "S8-scale" : "S8"} one hung target beside ${S8_HEALTHY_ENDPOINTS} healthy endpoints — ${fmtInt(
      healthyRatePerSec,
    )} req/s healthy (${S8_HEALTHY_FRACTION} × ${fmtInt(ceilingPerSec)}, ${ceilingSource})`,
  );
  const runs: S8Run[] = [];
  const discarded: S8Run[] = [];
  let repeatsLeft = 2;
  let order = 0;
  for (let pair = 1; pair <= S8_PAIRS; pair += 1) {
    if (pair > S8_MIN_PAIRS && !affordable(S8_PAIR_COST_S[mode])) {
      log(`(the run is late: ${pair - 1} pairs instead of ${S8_PAIRS})`);
      break;
    }
    // Alternate the order inside pairs so a drift over time does not favour one side.
    const sides = pair % 2 === 1 ? [false, true] : [true, false];
    for (const hung of sides) {
      order += 1;
      let run = await s8Run(mode, hung, healthyRatePerSec, pair, order, infra);
      if ((run.cpu.other ?? 0) > QUIET_PCT && repeatsLeft > 0 && affordable(S8_PAIR_COST_S[mode] / 2)) {
        repeatsLeft -= 1;
        log(
          `  other load was ${Math.round(run.cpu.other ?? 0)}% of a core during this run: discarding it and measuring again`,
        );
        discarded.push({ ...run, discarded: true });
        order += 1;
        run = await s8Run(mode, hung, healthyRatePerSec, pair, order, infra);
      }
      runs.push(run);
    }
  }
  const p99s = (hung: boolean) => runs.filter((r) => r.hung === hung).map((r) => r.latency.p99);
  const without = spread(p99s(false));
  const withHung = spread(p99s(true));
  const pairRatios: number[] = [];
  for (let pair = 1; pair <= S8_PAIRS; pair += 1) {
    const a = runs.find((r) => r.pair === pair && !r.hung);
    const b = runs.find((r) => r.pair === pair && r.hung);
    if (a && b) pairRatios.push(b.latency.p99 / a.latency.p99);
  }
  const ratio = withHung.median / without.median;
  log(
    `healthy p99 without: median ${fmtMs(without.median)} (range ${fmtMs(without.min)}–${fmtMs(
      without.max,
    )}); with the hung target: median ${fmtMs(withHung.median)} (range ${fmtMs(withHung.min)}–${fmtMs(withHung.max)})`,
  );
  log(
    `ratio ${fmtRatio(ratio)} (goal ≤ ${S8_RATIO_GOAL}×); per pair: ${pairRatios.map(fmtRatio).join(", ")}; p50 medians ${fmtMs(
      median(runs.filter((r) => !r.hung).map((r) => r.latency.p50)),
    )} / ${fmtMs(median(runs.filter((r) => r.hung).map((r) => r.latency.p50)))}`,
  );
  return {
    mode,
    healthyEndpoints: S8_HEALTHY_ENDPOINTS,
    healthyRatePerSec,
    healthyFraction: S8_HEALTHY_FRACTION,
    ceilingPerSec,
    ceilingSource,
    env: S8_ENV,
    pairsPlanned: S8_PAIRS,
    runs,
    discarded,
    without,
    with: withHung,
    ratio,
    pairRatios,
  };
}

export function s8Verdict(s8: S8Result): Verdict {
  const unclean = s8.runs.filter((r) => r.errors > 0 || Object.keys(r.non202).length > 0 || r.censored > 0);
  const label = s8.mode === "scale" ? "S8-scale" : "S8";
  return {
    goal: `healthy p99 with the hung target ≤ ${S8_RATIO_GOAL}× without`,
    measured: `${fmtRatio(s8.ratio)} (p99 ${fmtMs(s8.with.median)} vs ${fmtMs(s8.without.median)})`,
    met: unclean.length === 0 && s8.ratio <= S8_RATIO_GOAL,
    ...(unclean.length > 0
      ? {
          note: `${label}: run(s) ${unclean
            .map((r) => `#${r.order}`)
            .join(
              ", ",
            )} had transport errors, non-202 answers or healthy webhooks not delivered in time; counted as missed.`,
        }
      : {}),
  };
}
