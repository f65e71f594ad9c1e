/**
 * S7: 100,000 webhooks queued while the target is unavailable, then the target comes back.
 *
 * The target (the sink child) answers 503 with `Retry-After: <HTTP date T>` while "down": every webhook's first
 * attempt fails at once and Mitte schedules its next attempt at T (a target's longer Retry-After wins over the
 * 5 s backoff), so one attempt of the plan's five is spent and all 100,000 become due at the same instant. At
 * T − 1 s the sink answers 200 again; the drain rate is then Mitte working through a 100,000-deep queue, not the
 * spread of the backoff schedule. Mitte runs as one process (embedded) or one api + one worker (scale) for the
 * whole scenario; the process RSS (/proc/<pid>/status) is read before loading, after every 10,000 accepted,
 * during the drain and after it.
 */
import { performance } from "node:perf_hooks";
import {
  log,
  noteServerOutput,
  observations,
  type ScaleInfra,
  section,
  sleep,
  waitForQuiet,
} from "./common.js";
import { type Mode, type RunningMitte, startRunningMitte } from "./deploy.js";
import { closedLoop } from "./load.js";
import { makeBody, WEBHOOK_HEADERS } from "./payload.js";
import { type ForkedHelper, forkHelper, stopChild } from "./processes.js";
import type { MemoryPoint, S7Result, Verdict } from "./report.js";
import type { SinkChildMessage, SinkDone, SinkStats } from "./sink-child.js";
import { CpuWindow, describeCpu, fmtInt, fmtMb, fmtMs, MB, processMemory } from "./stats.js";

export const S7_N = 100_000;
export const S7_STEP = 10_000;
const S7_WARMUP_N = 2_000;
const S7_INGEST_CONCURRENCY = 50;
/** Issue 6: RSS ≤ +5 MB per 10 k queued, and back to the pre-load RSS (within the same 5 MB) after draining. */
export const S7_GROWTH_GOAL_BYTES = 5 * MB;
export const S7_RETURN_TOLERANCE_BYTES = 5 * MB;
/** Seconds from the start of the load to T (when every queued webhook is due again), per mode. */
const S7_HOLD_S: Record<Mode, number> = { embedded: 45, scale: 90 };
/** Samples after the drain, seconds after the last receipt; the last one is the verdict's. */
const S7_AFTER_S = [0, 5, 10];
const S7_DRAIN_TIMEOUT_MS = 240_000;
const S7_ENV = { MITTE_DELIVERY_CONCURRENCY: "64", MITTE_ENDPOINT_CONCURRENCY: "64" };

type Sink = ForkedHelper<SinkChildMessage>;
const isDone = (m: SinkChildMessage): m is SinkDone => m.type === "done";
const isStats = (m: SinkChildMessage): m is SinkStats => m.type === "stats";

async function sinkStats(sink: Sink): Promise<SinkStats> {
  sink.send({ type: "stats" });
  return sink.next(isStats, 5_000);
}

async function sampleMemory(mitte: RunningMitte, queued: number, t0: number): Promise<MemoryPoint> {
  const rss: MemoryPoint["rss"] = {};
  const heap: MemoryPoint["heap"] = {};
  for (const { name, proc, gc } of mitte.processes) {
    rss[name] = processMemory(proc.child.pid);
    heap[name] = gc?.main() ?? null;
  }
  return {
    queued,
    atS: (performance.now() - t0) / 1000,
    rss,
    heap,
    redisUsedMemory: await mitte.redisUsedMemory(),
  };
}

/** Least-squares slope of RSS over queued, in bytes per S7_STEP, over the points given. */
function slopePerStep(points: readonly MemoryPoint[], name: string): number {
  const xs = points.map((p) => p.queued / S7_STEP);
  const ys = points.map((p) => p.rss[name]?.rss ?? Number.NaN);
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i += 1) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den > 0 ? num / den : Number.NaN;
}

const memText = (point: MemoryPoint) =>
  [
    ...Object.entries(point.rss).map(
      ([name, m]) =>
        `${name} ${m ? fmtMb(m.rss) : "n/a"} (V8 live ${fmtMb(point.heap[name]?.liveAfterFullGc ?? Number.NaN)} / committed ${fmtMb(
          point.heap[name]?.committed ?? Number.NaN,
        )})`,
    ),
    ...(point.redisUsedMemory !== null ? [`redis used_memory ${fmtMb(point.redisUsedMemory)}`] : []),
  ].join(", ");

export async function runS7(mode: Mode, infra?: ScaleInfra): Promise<S7Result> {
  const label = mode === "scale" ? "S7-scale" : "S7";
  const holdS = S7_HOLD_S[mode];
  section(
    `${label} ${fmtInt(S7_N)} webhooks queued while the target answers 503 (Retry-After T), then the target comes back`,
  );
  const warmBodies = Array.from({ length: S7_WARMUP_N }, (_, i) => Buffer.from(makeBody(S7_N + i)));
  const sink = await forkHelper<SinkChildMessage>("sink-child.ts");
  let mitte: RunningMitte | undefined;
  let result: S7Result | undefined;
  try {
    // --trace-gc: the V8 heap figures (live after the latest full GC, committed) explain what RSS is made of.
    mitte = await startRunningMitte(mode, "s7", S7_ENV, infra, { traceGc: true });
    const running = mitte;
    const endpoint = await running.createEndpoint(`${sink.url}/s7`);
    const url = `${running.origin}/api/v1/h/${endpoint.slug}`;
    const t0 = performance.now();

    // Warm-up with the target up, so the pre-load RSS is that of a process that has ingested and delivered.
    sink.send({ type: "reset", expected: S7_WARMUP_N });
    const warm = await closedLoop({
      url,
      bodies: warmBodies,
      concurrency: S7_INGEST_CONCURRENCY,
      headers: WEBHOOK_HEADERS,
    });
    await sink.next(isDone, 60_000);
    await sleep(2_000);
    await waitForQuiet(`the ${label} load`);
    const before = await sampleMemory(running, 0, t0);
    log(`warm-up: ${fmtInt(warm.ok)} ingested and delivered; before loading: ${memText(before)}`);

    // Down: 503 with Retry-After = T (a whole second, so the HTTP date is exact).
    const upAtWallMs = Math.ceil((Date.now() + holdS * 1000) / 1000) * 1000;
    const retryAfter = new Date(upAtWallMs).toUTCString();
    const upAtPerf = performance.now() + (upAtWallMs - Date.now());
    sink.send({ type: "reset", expected: Number.MAX_SAFE_INTEGER });
    sink.send({ type: "unavailable", retryAfter });
    log(`target down: 503 with Retry-After: ${retryAfter} (${holdS} s from now)`);

    const points: MemoryPoint[] = [];
    const statuses: Record<string, number> = {};
    let accepted = 0;
    let errors = 0;
    const loadStartedAt = performance.now();
    await running.beforeWindow();
    const cpu = new CpuWindow(running.cpuPids());
    for (let start = 0; start < S7_N; start += S7_STEP) {
      const bodies = Array.from({ length: S7_STEP }, (_, i) => Buffer.from(makeBody(start + i)));
      const batch = await closedLoop({
        url,
        bodies,
        concurrency: S7_INGEST_CONCURRENCY,
        headers: WEBHOOK_HEADERS,
      });
      accepted += batch.ok;
      errors += batch.errors;
      for (const [code, count] of Object.entries(batch.statuses))
        statuses[code] = (statuses[code] ?? 0) + count;
      const point = await sampleMemory(running, accepted, t0);
      point.refusedSoFar = (await sinkStats(sink)).refused;
      points.push(point);
      log(
        `${fmtInt(accepted)} queued (batch ${fmtMs(batch.durationMs)}); ${memText(point)}; 503s answered so far ${fmtInt(
          point.refusedSoFar,
        )}`,
      );
    }
    const loadMs = performance.now() - loadStartedAt;
    const loadCpu = cpu.stop();
    await sleep(3_000);
    const settled = await sampleMemory(running, accepted, t0);
    const downStats = await sinkStats(sink);
    settled.refusedSoFar = downStats.refused;
    log(
      `load: ${fmtInt(accepted)} × 202 in ${fmtMs(loadMs)} (${fmtInt((accepted * 1000) / loadMs)}/s); 3 s later: ${memText(
        settled,
      )}; 503s answered ${fmtInt(downStats.refused)}; CPU ${describeCpu(loadCpu)}`,
    );

    // Up at T − 1 s: nothing is due before T.
    const slackMs = upAtPerf - 1_000 - performance.now();
    if (slackMs > 0) await sleep(slackMs);
    else
      observations.push(
        `${label}: the load ended ${fmtMs(-slackMs)} after the target was due back; webhooks accepted after that were retried on the 5 s backoff instead of at T.`,
      );
    const beforeUp = await sinkStats(sink);
    sink.send({ type: "reset", expected: accepted });
    await waitForQuiet(`the ${label} drain`);
    await running.beforeWindow();
    const drainCpu = new CpuWindow(running.cpuPids());
    sink.send({ type: "available" });
    const upAt = performance.now();
    const peak: Record<string, number> = {};
    let peakRedis = 0;
    const sampler = setInterval(() => {
      for (const { name, proc } of running.processes) {
        const m = processMemory(proc.child.pid);
        if (m) peak[name] = Math.max(peak[name] ?? 0, m.rss);
      }
      void running.redisUsedMemory().then((used) => {
        if (used !== null) peakRedis = Math.max(peakRedis, used);
      });
    }, 250);
    let done: SinkDone | SinkStats;
    let complete = true;
    try {
      done = await sink.next(isDone, S7_DRAIN_TIMEOUT_MS);
    } catch {
      complete = false;
      done = await sinkStats(sink);
      observations.push(
        `${label}: only ${fmtInt(done.distinct)} of ${fmtInt(accepted)} webhooks arrived within ${
          S7_DRAIN_TIMEOUT_MS / 1000
        } s of the target coming back.`,
      );
    } finally {
      clearInterval(sampler);
    }
    const doneAt = performance.now();
    const drainCpuShares = drainCpu.stop();
    const windowMs = done.lastAt - done.firstAt;
    const drain = {
      expected: accepted,
      distinct: done.distinct,
      total: done.total,
      complete,
      windowMs,
      ratePerSec: ((done.distinct - 1) * 1000) / windowMs,
      upToDoneMs: doneAt - upAt,
      tToDoneMs: doneAt - upAtPerf,
      cpu: drainCpuShares,
    };
    log(
      `drain: ${fmtInt(done.distinct)} of ${fmtInt(accepted)} distinct (${fmtInt(done.total)} total) in ${fmtMs(
        windowMs,
      )} first→last receipt = ${fmtInt(drain.ratePerSec)}/s; target up → all received ${fmtMs(
        drain.upToDoneMs,
      )}; CPU ${describeCpu(drainCpuShares)}`,
    );
    if (done.total !== done.distinct) {
      observations.push(`${label}: the sink saw ${fmtInt(done.total - done.distinct)} duplicate deliveries.`);
    }

    const after: MemoryPoint[] = [];
    let waitedS = 0;
    for (const s of S7_AFTER_S) {
      await sleep((s - waitedS) * 1000);
      waitedS = s;
      after.push(await sampleMemory(running, 0, t0));
    }
    log(`after draining (+${S7_AFTER_S.at(-1)} s): ${memText(after.at(-1)!)}`);

    const names = running.processes.map((p) => p.name);
    const last = points.at(-1)!;
    const growthPerStep: Record<string, number> = {};
    const slope: Record<string, number> = {};
    const afterDelta: Record<string, number> = {};
    const peakDelta: Record<string, number> = {};
    for (const name of names) {
      const base = before.rss[name]?.rss ?? Number.NaN;
      growthPerStep[name] = ((last.rss[name]?.rss ?? Number.NaN) - base) / (accepted / S7_STEP);
      slope[name] = slopePerStep(points, name);
      afterDelta[name] = (after.at(-1)!.rss[name]?.rss ?? Number.NaN) - base;
      peakDelta[name] = (peak[name] ?? Number.NaN) - base;
      log(
        `${name}: ${fmtMb(growthPerStep[name]!, true)} per 10 k queued (before → ${fmtInt(accepted)}), slope 10 k–100 k ${fmtMb(
          slope[name]!,
          true,
        )} per 10 k; after draining ${fmtMb(afterDelta[name]!, true)} vs before`,
      );
    }
    for (const name of names) {
      const liveBefore = before.heap[name]?.liveAfterFullGc ?? Number.NaN;
      const liveLoaded = settled.heap[name]?.liveAfterFullGc ?? Number.NaN;
      const livePerStep = (liveLoaded - liveBefore) / (accepted / S7_STEP);
      if (growthPerStep[name]! > S7_GROWTH_GOAL_BYTES && livePerStep <= S7_GROWTH_GOAL_BYTES) {
        observations.push(
          `${label} ${name}: RSS grew ${fmtMb(growthPerStep[name]!, true)} per 10 k queued while V8's live heap after a full GC grew ${fmtMb(
            livePerStep,
            true,
          )} per 10 k (${fmtMb(liveBefore)} → ${fmtMb(liveLoaded)}); the RSS growth is mostly heap V8 keeps committed (garbage not yet collected, headroom after the burst), not memory held per queued webhook.`,
        );
      }
    }
    for (const { name, proc } of running.processes) noteServerOutput(label, proc.output, name);
    result = {
      mode,
      n: S7_N,
      step: S7_STEP,
      warmupN: S7_WARMUP_N,
      holdS,
      retryAfter,
      concurrency: S7_ENV,
      ingestConcurrency: S7_INGEST_CONCURRENCY,
      processes: names,
      before,
      points,
      settled,
      accepted,
      statuses,
      errors,
      loadMs,
      loadCpu,
      refusedWhileDown: downStats.refused,
      receivedBeforeUp: beforeUp.distinct,
      loadEndedBeforeUpMs: slackMs + 1_000,
      drain,
      peak,
      peakDelta,
      peakRedisUsedMemory: mitte.mode === "scale" ? peakRedis : null,
      after,
      afterS: S7_AFTER_S,
      growthPerStep,
      slope,
      afterDelta,
      shutdown: "",
    };
  } finally {
    const shutdown = mitte ? await mitte.close() : "";
    await stopChild(sink.child);
    if (result) result.shutdown = shutdown;
  }
  return result;
}

export function s7Verdicts(s7: S7Result): { growth: Verdict; back: Verdict } {
  const names = s7.processes;
  const valid = s7.accepted === s7.n && s7.drain.complete;
  const invalidNote = valid
    ? []
    : [
        `${s7.mode === "scale" ? "S7-scale" : "S7"}: ${fmtInt(s7.accepted)} of ${fmtInt(s7.n)} accepted, ${fmtInt(
          s7.drain.distinct,
        )} delivered; counted as missed.`,
      ];
  const worstGrowth = Math.max(...names.map((n) => s7.growthPerStep[n] ?? Number.NaN));
  const worstBack = Math.max(...names.map((n) => s7.afterDelta[n] ?? Number.NaN));
  const per = (values: Record<string, number>) =>
    names.length === 1
      ? fmtMb(values[names[0]!]!, true)
      : names.map((n) => `${n} ${fmtMb(values[n]!, true)}`).join(", ");
  return {
    growth: {
      goal: `RSS ≤ +${S7_GROWTH_GOAL_BYTES / MB} MB per 10 k queued`,
      measured: `${per(s7.growthPerStep)} per 10 k`,
      met: valid && worstGrowth <= S7_GROWTH_GOAL_BYTES,
      ...(invalidNote.length > 0 ? { note: invalidNote.join(" ") } : {}),
    },
    back: {
      goal: `RSS back to the pre-load value (within +${S7_RETURN_TOLERANCE_BYTES / MB} MB) ${s7.afterS.at(-1)} s after draining`,
      measured: `${per(s7.afterDelta)} vs before`,
      met: valid && worstBack <= S7_RETURN_TOLERANCE_BYTES,
    },
  };
}
