/** Small statistics and CPU-accounting helpers. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile of an ascending-sorted array (q in 0..100). */
export function percentileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((q / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Distribution {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  const sum = list.reduce((acc, v) => acc + v, 0);
  return {
    count: list.length,
    p50: percentileSorted(list, 50),
    p90: percentileSorted(list, 90),
    p99: percentileSorted(list, 99),
    p999: percentileSorted(list, 99.9),
    max: list.length ? list[list.length - 1]! : Number.NaN,
    mean: list.length ? sum / list.length : Number.NaN,
  };
}

export const fmtInt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
export const fmtMs = (n: number) =>
  Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : "n/a";
export const fmtRatio = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : "n/a");
export const fmtPct = (n: number) => (Number.isFinite(n) ? `${Math.round(n)}%` : "n/a");
/** A fraction as a signed percentage with one decimal (0.052 → "5.2 %", −0.01 → "−1.0 %"). */
export const fmtOverhead = (n: number) =>
  Number.isFinite(n) ? `${n < 0 ? "−" : ""}${Math.abs(n * 100).toFixed(1)} %` : "n/a";

let clockTicks: number | null = null;
/** Clock ticks per second of /proc CPU times (USER_HZ). */
export function ticksPerSecond(): number {
  if (clockTicks !== null) return clockTicks;
  try {
    clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    clockTicks = 100;
  }
  return clockTicks;
}

/** user+system CPU time of a process in ms, from /proc (Linux); null where unavailable. */
export function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  if (pid === process.pid) {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** Busy and total jiffies summed over all CPUs, from /proc/stat; null where unavailable. */
function machineTicks(): { busy: number; total: number } | null {
  try {
    // user nice system idle iowait irq softirq steal
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((sum, v) => sum + v, 0);
    // irq/softirq (loopback networking) is left out of "busy": it is largely our own traffic.
    return { busy: (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[7] ?? 0), total };
  } catch {
    return null;
  }
}

/** CPU busy on the whole machine over `windowMs`, in % of one core (200% = both cores of a 2-core box). */
export async function machineBusyPct(windowMs: number): Promise<number | null> {
  const a = machineTicks();
  await new Promise<void>((done) => setTimeout(done, windowMs));
  const b = machineTicks();
  if (!a || !b || b.total <= a.total) return null;
  return ((b.busy - a.busy) / (b.total - a.total)) * cpus().length * 100;
}

/** When a process started, in clock ticks since boot (field 22 of /proc/<pid>/stat); null where unavailable. */
function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return null;
  }
}

/** Now, in clock ticks since boot (same unit as processStartTicks); null where unavailable. */
function uptimeTicks(): number | null {
  try {
    return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * ticksPerSecond();
  } catch {
    return null;
  }
}

/**
 * What a CpuWindow measures under one name: a pid, or a function listing the current pids of a group whose
 * members come and go (the PostgreSQL backends a Mitte deployment opens), summed.
 */
export type PidSource = number | undefined | (() => readonly number[]);

/**
 * Measures the CPU share (100% = one core) of named processes over a window, `top`-style.
 * A process that exits before `stop()` reports what it used up to its last successful read. A group member
 * first seen after the window opened counts from 0 if it was born inside the window, else from its first
 * reading. `other` is the rest of the machine's busy time in the window (other processes, unattributed
 * kernel work).
 */
export class CpuWindow {
  private readonly start = new Map<string, number | null>();
  private readonly last = new Map<string, number | null>();
  private readonly groupStart = new Map<string, Map<number, number>>();
  private readonly groupLast = new Map<string, Map<number, number>>();
  private readonly startedAt = performance.now();
  private readonly startedAtTicks = uptimeTicks();
  private readonly machineStart = machineTicks();
  private timer: NodeJS.Timeout;

  constructor(private readonly pids: Record<string, PidSource>) {
    for (const [name, source] of Object.entries(pids)) {
      if (typeof source === "function") {
        const first = new Map<number, number>();
        for (const pid of source()) {
          const value = processCpuMs(pid);
          if (value !== null) first.set(pid, value);
        }
        this.groupStart.set(name, first);
        this.groupLast.set(name, new Map(first));
        continue;
      }
      const value = processCpuMs(source);
      this.start.set(name, value);
      this.last.set(name, value);
    }
    // Re-read periodically so a process that exits mid-window still has a recent reading.
    this.timer = setInterval(() => this.read(), 500);
    this.timer.unref();
  }

  private read(): void {
    for (const [name, source] of Object.entries(this.pids)) {
      if (typeof source === "function") {
        const first = this.groupStart.get(name)!;
        const last = this.groupLast.get(name)!;
        for (const pid of new Set([...last.keys(), ...source()])) {
          const value = processCpuMs(pid);
          if (value === null) continue;
          if (!first.has(pid)) {
            const born = processStartTicks(pid);
            const bornInside = born !== null && this.startedAtTicks !== null && born >= this.startedAtTicks;
            first.set(pid, bornInside ? 0 : value);
          }
          last.set(pid, value);
        }
        continue;
      }
      const value = processCpuMs(source);
      if (value !== null) this.last.set(name, value);
    }
  }

  stop(): Record<string, number> {
    this.read();
    clearInterval(this.timer);
    const wallMs = performance.now() - this.startedAt;
    const shares: Record<string, number> = {};
    for (const name of Object.keys(this.pids)) {
      const group = this.groupLast.get(name);
      if (group) {
        const first = this.groupStart.get(name)!;
        let used = 0;
        for (const [pid, value] of group) used += value - (first.get(pid) ?? value);
        if (wallMs > 0) shares[name] = (used / wallMs) * 100;
        continue;
      }
      const a = this.start.get(name);
      const b = this.last.get(name);
      if (a != null && b != null && wallMs > 0) shares[name] = ((b - a) / wallMs) * 100;
    }
    // Everything else on the machine (other processes, kernel work not charged to ours): a noisy-neighbour flag.
    const machineEnd = machineTicks();
    if (this.machineStart && machineEnd && machineEnd.total > this.machineStart.total) {
      const busyShare =
        (machineEnd.busy - this.machineStart.busy) / (machineEnd.total - this.machineStart.total);
      const machinePct = busyShare * cpus().length * 100;
      const ours = Object.values(shares).reduce((sum, v) => sum + v, 0);
      shares.other = Math.max(0, machinePct - ours);
    }
    return shares;
  }
}

export function describeCpu(shares: Record<string, number>): string {
  return Object.entries(shares)
    .map(([name, pct]) => `${name} ${fmtPct(pct)}`)
    .join(", ");
}

/** Memory of a process from /proc/<pid>/status, in bytes; null where unavailable (not Linux, process gone). */
export interface ProcessMemory {
  /** VmRSS: resident set size (anonymous + file-backed + shared memory). */
  rss: number;
  /** RssAnon: the anonymous part (heaps, stacks): what the process allocated itself. */
  anon: number;
  /** RssFile: resident file-backed pages (code, mapped files). */
  file: number;
  /** VmHWM: the largest RSS the process has had so far. */
  hwm: number;
}

export function processMemory(pid: number | undefined): ProcessMemory | null {
  if (pid === undefined) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => {
      const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
      return match ? Number(match[1]) * 1024 : Number.NaN;
    };
    return { rss: field("VmRSS"), anon: field("RssAnon"), file: field("RssFile"), hwm: field("VmHWM") };
  } catch {
    return null;
  }
}

export const MB = 1024 * 1024;
/** Bytes as MB with one decimal ("123.4 MB"); signed when `signed` ("+1.2 MB", "−0.5 MB"). */
export function fmtMb(bytes: number, signed = false): string {
  if (!Number.isFinite(bytes)) return "n/a";
  const value = (bytes / MB).toFixed(1);
  if (!signed) return `${value} MB`;
  return bytes < 0 ? `−${(-bytes / MB).toFixed(1)} MB` : `+${value} MB`;
}

/** One isolate's latest figures from V8's --trace-gc lines, in bytes. */
export interface HeapFigures {
  /** Live heap right after the latest full GC (Mark-Compact), and when that was (ms since the process started). */
  liveAfterFullGc: number | null;
  fullGcAtMs: number | null;
  /** Heap V8 has committed (reserved from the OS) after the latest GC of any kind. */
  committed: number | null;
  fullGcs: number;
}

const GC_LINE =
  /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: ([A-Za-z -]+?)(?: \([a-z ]+\))? ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/;

/**
 * Reads a child's `node --trace-gc` output (hand `divert` to startMitte): per isolate, the live heap after the
 * latest full GC and the committed heap. `main()` is the isolate with the largest committed heap (the main
 * thread; Mitte's SQLite thread is a worker isolate of a few MB).
 */
export class GcTrace {
  private readonly isolates = new Map<string, HeapFigures>();

  /** True (and consumed) for a --trace-gc line. */
  readonly divert = (line: string): boolean => {
    const match = GC_LINE.exec(line);
    if (!match) return /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: /.test(line);
    const [, isolate, atMs, kind, , , after, committed] = match;
    const figures = this.isolates.get(isolate!) ?? {
      liveAfterFullGc: null,
      fullGcAtMs: null,
      committed: null,
      fullGcs: 0,
    };
    figures.committed = Number(committed) * MB;
    if (kind!.startsWith("Mark-Compact")) {
      figures.liveAfterFullGc = Number(after) * MB;
      figures.fullGcAtMs = Number(atMs);
      figures.fullGcs += 1;
    }
    this.isolates.set(isolate!, figures);
    return true;
  };

  main(): HeapFigures | null {
    let best: HeapFigures | null = null;
    for (const figures of this.isolates.values()) {
      if (!best || (figures.committed ?? 0) > (best.committed ?? 0)) best = figures;
    }
    return best ? { ...best } : null;
  }
}
