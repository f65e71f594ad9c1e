/**
 * Child processes and temp dirs for the benchmarks. Everything started here is registered, and an exit hook
 * kills whatever is still alive, runs the registered exit tasks (dropping scale mode's PostgreSQL schemas) and
 * removes every temp dir, also when the run fails or is interrupted.
 */
import { type ChildProcess, execFile, fork, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
export const REPO_DIR = resolve(BENCH_DIR, "..");
const MITTE_BIN = join(REPO_DIR, "apps/cli/bin/mitte.js");

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
/** Synchronous clean-ups of things outside this process tree (PostgreSQL schemas), run after the kills. */
const exitTasks = new Map<string, () => void>();

function killAllNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
  for (const dir of tempDirs) {
    try {
      // A child killed a moment ago may still be writing its last file: retry on ENOTEMPTY/EBUSY.
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    } catch (error) {
      console.error(`bench: could not remove ${dir}:`, error instanceof Error ? error.message : error);
    }
  }
  tempDirs.clear();
  // Slower (a PostgreSQL round trip each), so after the quick local clean-up.
  for (const [name, task] of exitTasks) {
    try {
      task();
    } catch (error) {
      console.error(`bench: clean-up of ${name} failed:`, error instanceof Error ? error.message : error);
    }
  }
  exitTasks.clear();
}

/** Registers a synchronous clean-up the exit hook runs if the bench ends before `removeExitTask(name)`. */
export function addExitTask(name: string, task: () => void): void {
  exitTasks.set(name, task);
}

export function removeExitTask(name: string): void {
  exitTasks.delete(name);
}

let cleanupInstalled = false;

/** Kills children and removes temp dirs on any exit: normal, thrown error, SIGINT/SIGTERM. */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      console.error(`\nbench: received ${signal}, stopping children`);
      killAllNow();
      process.exit(130);
    });
  }
}

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function makeTempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mitte-bench-${label}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));
}

/** Sends `signal`, waits for the exit; SIGKILL after `timeoutMs`. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = "SIGTERM",
  timeoutMs = 15_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return { code: child.exitCode, signal: child.signalCode, killed: false };
  }
  child.kill(signal);
  const timer = sleep(timeoutMs).then(() => "timeout" as const);
  const result = await Promise.race([exited(child), timer]);
  if (result === "timeout") {
    child.kill("SIGKILL");
    const final = await exited(child);
    return { ...final, killed: true };
  }
  return { ...result, killed: false };
}

/**
 * Keeps the last lines a child printed, for error reports; counts lines so oddities are visible. Lines for which
 * `divert` returns true (e.g. V8's --trace-gc output) are handed to it instead and neither kept nor counted.
 */
export class OutputTail {
  readonly lines: string[] = [];
  total = 0;
  constructor(
    private readonly keep = 40,
    private readonly divert?: (line: string) => boolean,
  ) {}
  attach(stream: NodeJS.ReadableStream | null): void {
    if (!stream) return;
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        if (!line.trim()) continue;
        if (this.divert?.(line)) continue;
        this.total += 1;
        this.lines.push(line);
        if (this.lines.length > this.keep) this.lines.shift();
      }
    });
  }
  text(): string {
    return this.lines.join("\n");
  }
}

export interface MitteProcess {
  child: ChildProcess;
  baseUrl: string;
  port: number;
  output: OutputTail;
  /** performance.now() in this process when spawned, and when /healthz first answered 200. */
  spawnedAt: number;
  readyAt: number;
}

/** The environment the brief prescribes; `extra` overrides (delivery switches, concurrency). */
export function mitteEnv(
  port: number,
  dataDir: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: "production",
    PORT: String(port),
    HOST: "127.0.0.1",
    MITTE_DATA_DIR: dataDir,
    MITTE_DELIVERY_ENABLED: "false",
    MITTE_RATE_LIMIT_ENDPOINT_PER_MIN: "0",
    MITTE_RATE_LIMIT_IP_PER_MIN: "0",
    LOG_LEVEL: "warn",
    MITTE_ALLOW_PRIVATE_TARGETS: "127.0.0.1/32",
    ...extra,
  };
}

export async function waitForHealthz(
  baseUrl: string,
  child: ChildProcess,
  output: OutputTail,
  timeoutMs = 20_000,
) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `process exited (${child.exitCode ?? child.signalCode}) before /healthz answered:\n${output.text()}`,
      );
    }
    try {
      const response = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.ok) return performance.now();
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
  throw new Error(`/healthz at ${baseUrl} did not answer within ${timeoutMs} ms:\n${output.text()}`);
}

/**
 * `mitte start` (role all), or `mitte start --role api|worker` for a scale deployment. `nodeArgs` go to node
 * before the script (e.g. --trace-gc); `divert` takes output lines out of the counted tail (see OutputTail).
 */
export async function startMitte(
  dataDir: string,
  extraEnv: Record<string, string> = {},
  options: {
    port?: number;
    role?: "api" | "worker";
    nodeArgs?: readonly string[];
    divert?: (line: string) => boolean;
  } = {},
): Promise<MitteProcess> {
  const chosenPort = options.port ?? (await freePort());
  const output = new OutputTail(40, options.divert);
  const spawnedAt = performance.now();
  const args = [
    ...(options.nodeArgs ?? []),
    ...(options.role ? [MITTE_BIN, "start", "--role", options.role] : [MITTE_BIN, "start"]),
  ];
  const child = track(
    spawn(process.execPath, args, {
      cwd: REPO_DIR,
      env: mitteEnv(chosenPort, dataDir, extraEnv),
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  output.attach(child.stdout);
  output.attach(child.stderr);
  const baseUrl = `http://127.0.0.1:${chosenPort}`;
  const readyAt = await waitForHealthz(baseUrl, child, output);
  return { child, baseUrl, port: chosenPort, output, spawnedAt, readyAt };
}

/** Runs one `mitte` CLI command against `dataDir` (or the scale deployment in `extraEnv`), returns its stdout. */
export function runCli(
  args: string[],
  dataDir: string,
  extraEnv: Record<string, string> = {},
): Promise<string> {
  return new Promise((resolveOut, reject) => {
    const child = track(
      execFile(
        process.execPath,
        [MITTE_BIN, ...args],
        { cwd: REPO_DIR, env: mitteEnv(0, dataDir, extraEnv), timeout: 30_000 },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`mitte ${args.join(" ")} failed: ${error.message}\n${stderr}`));
          else resolveOut(stdout);
        },
      ),
    );
    void child;
  });
}

export async function createProUser(
  dataDir: string,
  extraEnv: Record<string, string> = {},
): Promise<{ userId: string; apiKey: string }> {
  const stdout = await runCli(
    ["user", "create", "--email", "bench@example.com", "--plan", "pro", "--json"],
    dataDir,
    extraEnv,
  );
  const line = stdout.trim().split("\n").pop() ?? "";
  const parsed = JSON.parse(line) as { userId?: string; apiKey?: string };
  if (!parsed.userId || !parsed.apiKey) throw new Error(`unexpected user create output: ${stdout}`);
  return { userId: parsed.userId, apiKey: parsed.apiKey };
}

export async function createEndpoint(
  baseUrl: string,
  apiKey: string,
  targetUrl: string,
): Promise<{ id: string; slug: string }> {
  const response = await fetch(`${baseUrl}/api/v1/endpoints`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "bench", targetUrl }),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`POST /api/v1/endpoints answered ${response.status}: ${text}`);
  const parsed = JSON.parse(text) as { id?: string; slug?: string };
  if (!parsed.id || !parsed.slug) throw new Error(`unexpected endpoint response: ${text}`);
  return { id: parsed.id, slug: parsed.slug };
}

/** Sets up a fresh data dir, pro user, running Mitte and one endpoint. */
export async function startMitteWithEndpoint(
  label: string,
  targetUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<{ mitte: MitteProcess; dataDir: string; ingestUrl: string; slug: string; apiKey: string }> {
  const dataDir = makeTempDir(label);
  const { apiKey } = await createProUser(dataDir);
  const mitte = await startMitte(dataDir, extraEnv);
  const endpoint = await createEndpoint(mitte.baseUrl, apiKey, targetUrl);
  return {
    mitte,
    dataDir,
    ingestUrl: `${mitte.baseUrl}/api/v1/h/${endpoint.slug}`,
    slug: endpoint.slug,
    apiKey,
  };
}

export interface ForkedHelper<M> {
  child: ChildProcess;
  port: number;
  url: string;
  /** Resolves with the next IPC message matching `accept`. */
  next<T extends M>(accept: (message: M) => message is T, timeoutMs: number): Promise<T>;
  send(message: unknown): void;
}

/** Forks one of the bench's own TypeScript helpers (through tsx) and waits for its `{type:"ready",port}`. */
export async function forkHelper<M extends { type: string }>(
  script: string,
  args: string[] = [],
): Promise<ForkedHelper<M>> {
  const output = new OutputTail();
  const child = track(
    fork(join(BENCH_DIR, script), args, {
      cwd: REPO_DIR,
      execArgv: ["--import", "tsx", ...(process.env.HELPER_NODE_ARGS ?? "").split(" ").filter(Boolean)],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    }),
  );
  output.attach(child.stdout);
  output.attach(child.stderr);
  const waiting: { accept: (message: M) => boolean; done: (message: M) => void }[] = [];
  const backlog: M[] = [];
  child.on("message", (raw) => {
    const message = raw as M;
    const index = waiting.findIndex((w) => w.accept(message));
    if (index === -1) {
      backlog.push(message);
      return;
    }
    const [waiter] = waiting.splice(index, 1);
    waiter?.done(message);
  });
  const next = <T extends M>(accept: (message: M) => message is T, timeoutMs: number): Promise<T> => {
    const queued = backlog.findIndex(accept);
    if (queued !== -1) return Promise.resolve(backlog.splice(queued, 1)[0] as T);
    return new Promise<T>((done, reject) => {
      const waiter = {
        accept,
        done: (message: M) => {
          clearTimeout(timer);
          child.off("exit", onExit);
          done(message as T);
        },
      };
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`${script} exited while awaited:\n${output.text()}`));
      };
      const timer = setTimeout(() => {
        const index = waiting.indexOf(waiter);
        if (index !== -1) waiting.splice(index, 1);
        child.off("exit", onExit);
        reject(new Error(`${script}: no expected message within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once("exit", onExit);
      waiting.push(waiter);
    });
  };
  const ready = await next((m: M): m is M & { type: "ready"; port: number } => m.type === "ready", 20_000);
  return {
    child,
    port: ready.port,
    url: `http://127.0.0.1:${ready.port}`,
    next,
    send: (message) => child.send(message as never),
  };
}
