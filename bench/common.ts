/**
 * What every scenario of `npm run bench` shares at run time: console output, the observations list that ends up
 * in the report, waiting for a quiet machine, measure-again-if-disturbed, and the run's time budget.
 */
import { performance } from "node:perf_hooks";
import type { Spread } from "./report.js";
import type { PgAdmin, RedisServer } from "./scale.js";
import { fmtMs, machineBusyPct, median } from "./stats.js";

/** Scale mode's shared infrastructure: the bench's own redis-server and its PostgreSQL admin connection. */
export interface ScaleInfra {
  redis: RedisServer;
  admin: PgAdmin;
}

/** The machine may be shared: before each measured phase wait (bounded) until the rest of it is quiet. */
export const QUIET_PCT = 25;
const QUIET_WAIT_MAX_MS = 8_000;
const QUIET_WAIT_BUDGET_MS = 30_000;

/** Notes for the report's Observations section, pushed by any scenario. */
export const observations: string[] = [];

const benchStartedAt = performance.now();
let quietWaitSpentMs = 0;
export const elapsedS = () => (performance.now() - benchStartedAt) / 1000;

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
export const section = (title: string) => console.log(`\n=== ${title} ===`);
export const log = (text: string) => console.log(`  ${text}`);

export function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values };
}

export async function waitForQuiet(before: string): Promise<void> {
  const started = performance.now();
  const maxWait = Math.min(QUIET_WAIT_MAX_MS, QUIET_WAIT_BUDGET_MS - quietWaitSpentMs);
  let busy = await machineBusyPct(400);
  while (busy !== null && busy > QUIET_PCT && performance.now() - started < maxWait) {
    busy = await machineBusyPct(400);
  }
  const waited = performance.now() - started;
  quietWaitSpentMs += Math.max(0, waited - 400);
  if (busy !== null && busy > QUIET_PCT) {
    log(
      `(machine still ${Math.round(busy)}% busy with other work after waiting ${fmtMs(waited)}; measuring ${before} anyway)`,
    );
  } else if (waited > 1_000) {
    log(`(waited ${fmtMs(waited)} for other load to settle before ${before})`);
  }
}

// ---------------------------------------------------------------- time budget

/**
 * The whole run aims to finish within this many seconds. Optional work (measuring a disturbed run again,
 * extra S4m pairs, interleaved S1-scale baselines, S4-scale's full N) is done only while it still fits: the time
 * spent so far, plus the optional work, plus the estimates of the scenarios still to come stays within it.
 */
export const RUNTIME_BUDGET_S = 24 * 60;

/** Rough durations (s) of each scenario on the 2-core reference machine, for the budget. */
const plannedS = new Map<string, number>();

/** Registers the selected scenarios and their estimated durations, before the first one starts. */
export function planScenarios(estimates: Record<string, number>): void {
  for (const [name, seconds] of Object.entries(estimates)) plannedS.set(name, seconds);
}

/** Marks a scenario as started: its estimate no longer counts as work still to come. */
export function startScenario(name: string): void {
  plannedS.delete(name);
}

const stillPlannedS = () => [...plannedS.values()].reduce((sum, s) => sum + s, 0);

/** True when `extraS` more seconds of optional work still leave room for everything still planned. */
export function affordable(extraS: number): boolean {
  return elapsedS() + extraS + stillPlannedS() <= RUNTIME_BUDGET_S;
}

// ---------------------------------------------------------------- disturbed runs

export interface RepeatBudget {
  left: number;
  /** Repeats only while the run can afford them. */
  stillEarly: () => boolean;
}

/** A repeat budget: at most `max` repeats, each only while `costS` more seconds fit the time budget. */
export function repeatBudget(max: number, costS: number): RepeatBudget {
  return { left: max, stillEarly: () => affordable(costS) };
}

/**
 * Runs `measure`. If other load on the machine disturbed it (more than QUIET_PCT of a core) and
 * the scenario's repeat budget allows, the run is kept as discarded, `beforeRepeat` runs, and it is measured
 * again once.
 */
export async function measureUndisturbed<R extends { cpu: Record<string, number> }>(
  measure: () => Promise<R>,
  repeats: RepeatBudget,
  discarded: R[],
  beforeRepeat: () => Promise<void> | void,
): Promise<R> {
  const run = await measure();
  const other = run.cpu.other ?? 0;
  if (other <= QUIET_PCT || repeats.left <= 0 || !repeats.stillEarly()) return run;
  repeats.left -= 1;
  log(`  other load was ${Math.round(other)}% of a core during this run: discarding it and measuring again`);
  discarded.push({ ...run, discarded: true });
  await beforeRepeat();
  return measure();
}

/** Records which measured windows had other load above the quiet threshold. */
export function noteDisturbedWindows(windows: [string, number | undefined][], which: string): void {
  const disturbed = windows.filter((w): w is [string, number] => w[1] !== undefined && w[1] > QUIET_PCT);
  if (disturbed.length === 0) return;
  observations.push(
    `Other load exceeded 25% of a core during ${disturbed
      .map(([name, other]) => `${name} (${Math.round(other)}%)`)
      .join(", ")}; ${which} are likely depressed.`,
  );
}

/** Pushes an observation for a Mitte process that printed warnings or errors. */
export function noteServerOutput(
  label: string,
  output: { total: number; lines: readonly string[] },
  who = "Mitte",
): void {
  if (output.total > 0) {
    observations.push(
      `${label}: ${who} printed ${output.total} log line(s) at warn or above; last: ${output.lines.at(-1)}`,
    );
  }
}
