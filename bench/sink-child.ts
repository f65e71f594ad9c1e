/**
 * S4's and S7's sink in its own process: counts receipts (total and distinct event ids) and reports over IPC.
 * Parent → child: {type:"reset", expected}; {type:"unavailable", retryAfter} (answer 503 with that Retry-After
 * from now on, receiving nothing) and {type:"available"}; {type:"stats"}.
 * Child → parent: {type:"ready", port}, {type:"done", …} once `expected` distinct ids arrived, {type:"stats", …}
 * in answer to {type:"stats"}. firstAt/lastAt are performance.now() of this process; only their difference is
 * meaningful to the parent.
 */
import { startSink } from "./sink.js";

export interface SinkCounts {
  total: number;
  distinct: number;
  firstAt: number;
  lastAt: number;
  cpuMs: number;
  /** Requests answered 503 while unavailable (since the last reset). */
  refused: number;
}
export type SinkDone = SinkCounts & { type: "done" };
export type SinkStats = SinkCounts & { type: "stats" };
export type SinkChildMessage = { type: "ready"; port: number } | SinkDone | SinkStats;

type ParentMessage =
  | { type: "reset"; expected: number }
  | { type: "stats" }
  | { type: "unavailable"; retryAfter: string }
  | { type: "available" };

let expected = Number.POSITIVE_INFINITY;
let total = 0;
let refused = 0;
let firstAt = 0;
let lastAt = 0;
let seen = new Set<string>();
let doneSent = false;
let retryAfter: string | null = null;

function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

function snapshot(type: "done" | "stats"): SinkDone | SinkStats {
  return { type, total, distinct: seen.size, firstAt, lastAt, cpuMs: cpuMs(), refused };
}

const sink = await startSink(
  (id, atMs) => {
    total += 1;
    if (total === 1) firstAt = atMs;
    lastAt = atMs;
    if (id !== null) seen.add(id);
    if (!doneSent && seen.size >= expected) {
      doneSent = true;
      process.send?.(snapshot("done"));
    }
  },
  {
    unavailable: () => retryAfter,
    onRefused: () => {
      refused += 1;
    },
  },
);

process.on("message", (raw) => {
  const message = raw as ParentMessage;
  if (message.type === "reset") {
    expected = message.expected;
    total = 0;
    refused = 0;
    firstAt = 0;
    lastAt = 0;
    seen = new Set();
    doneSent = false;
  } else if (message.type === "stats") {
    process.send?.(snapshot("stats"));
  } else if (message.type === "unavailable") {
    retryAfter = message.retryAfter;
  } else if (message.type === "available") {
    retryAfter = null;
  }
});

// The parent going away (crash included) ends this process.
process.on("disconnect", () => {
  void sink.close().finally(() => process.exit(0));
});

process.send?.({ type: "ready", port: sink.port } satisfies SinkChildMessage);
