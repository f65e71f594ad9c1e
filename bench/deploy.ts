/**
 * A running Mitte with delivery on, in either mode, for the scenarios that ingest and deliver at the same time
 * (S3 levels, S7, S8): embedded is one `mitte start` on a fresh data dir; scale is a fresh deployment
 * (schema, Redis prefix, pro user) with one `--role api` and one `--role worker` process.
 */
import type { ScaleInfra } from "./common.js";
import {
  createEndpoint,
  createProUser,
  type MitteProcess,
  makeTempDir,
  removeTempDir,
  startMitte,
  stopChild,
} from "./processes.js";
import { createDeployment } from "./scale.js";
import { GcTrace, type PidSource } from "./stats.js";

export type Mode = "embedded" | "scale";

export interface RunningMitte {
  mode: Mode;
  /** Where webhooks are sent (embedded: the process; scale: the api process). */
  origin: string;
  /** The Mitte processes by name: embedded `mitte`; scale `api` and `worker` (`gc`: with `traceGc`). */
  processes: { name: string; proc: MitteProcess; gc?: GcTrace }[];
  /** CPU window groups: the Mitte processes, and in scale mode redis-server and the deployment's backends. */
  cpuPids(): Record<string, PidSource>;
  /** Refreshes the PostgreSQL backend list (scale) before a CPU window opens. */
  beforeWindow(): Promise<void>;
  createEndpoint(targetUrl: string): Promise<{ id: string; slug: string }>;
  /** Scale mode: Redis `used_memory` (bytes) of the bench's redis-server; null in embedded mode. */
  redisUsedMemory(): Promise<number | null>;
  /** Log lines at warn or above, summed over the processes. */
  logLines(): number;
  /** SIGTERM to every process (exit awaited), then removes the data dir or the deployment. */
  close(): Promise<string>;
}

const shutdownText = (s: { code: number | null; signal: NodeJS.Signals | null; killed: boolean }) =>
  s.killed ? "did not exit within 15 s of SIGTERM, killed" : `exit code ${s.code ?? s.signal}`;

/**
 * Starts Mitte with delivery on. `env` is added to the delivery process's environment (embedded: the one
 * process; scale: the worker; the api process gets it too, harmlessly). `traceGc` runs every process with
 * `node --trace-gc` and reads its heap figures (GcTrace) out of the output.
 */
export async function startRunningMitte(
  mode: Mode,
  label: string,
  env: Record<string, string>,
  infra?: ScaleInfra,
  options: { traceGc?: boolean } = {},
): Promise<RunningMitte> {
  const traced = () => {
    if (!options.traceGc) return { gc: undefined, spawn: {} };
    const gc = new GcTrace();
    return { gc, spawn: { nodeArgs: ["--trace-gc"], divert: gc.divert } };
  };
  if (mode === "embedded") {
    const dataDir = makeTempDir(label);
    try {
      const { apiKey } = await createProUser(dataDir);
      const t = traced();
      const mitte = await startMitte(dataDir, { MITTE_DELIVERY_ENABLED: "true", ...env }, t.spawn);
      return {
        mode,
        origin: mitte.baseUrl,
        processes: [{ name: "mitte", proc: mitte, ...(t.gc ? { gc: t.gc } : {}) }],
        cpuPids: () => ({ mitte: mitte.child.pid, bench: process.pid }),
        beforeWindow: async () => {},
        createEndpoint: (targetUrl) => createEndpoint(mitte.baseUrl, apiKey, targetUrl),
        redisUsedMemory: async () => null,
        logLines: () => mitte.output.total,
        async close() {
          const stopped = await stopChild(mitte.child);
          removeTempDir(dataDir);
          return `mitte ${shutdownText(stopped)}`;
        },
      };
    } catch (error) {
      removeTempDir(dataDir);
      throw error;
    }
  }
  if (!infra) throw new Error("scale mode needs the bench's Redis and PostgreSQL");
  const deployment = await createDeployment(label, infra.redis, infra.admin);
  const started: MitteProcess[] = [];
  try {
    const ta = traced();
    const api = await startMitte(
      deployment.dataDir,
      { ...deployment.env, ...env },
      { role: "api", ...ta.spawn },
    );
    started.push(api);
    const tw = traced();
    const worker = await startMitte(
      deployment.dataDir,
      { ...deployment.env, MITTE_DELIVERY_ENABLED: "true", ...env },
      { role: "worker", ...tw.spawn },
    );
    started.push(worker);
    return {
      mode,
      origin: api.baseUrl,
      processes: [
        { name: "api", proc: api, ...(ta.gc ? { gc: ta.gc } : {}) },
        { name: "worker", proc: worker, ...(tw.gc ? { gc: tw.gc } : {}) },
      ],
      cpuPids: () => ({
        api: api.child.pid,
        worker: worker.child.pid,
        redis: infra.redis.child.pid,
        postgres: deployment.backends.pids,
        bench: process.pid,
      }),
      beforeWindow: () => deployment.backends.sync(),
      createEndpoint: (targetUrl) => createEndpoint(api.baseUrl, deployment.apiKey, targetUrl),
      redisUsedMemory: async () => {
        const info = await infra.redis.client.info("memory");
        return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
      },
      logLines: () => api.output.total + worker.output.total,
      async close() {
        try {
          const [apiStop, workerStop] = await Promise.all([stopChild(api.child), stopChild(worker.child)]);
          return `api ${shutdownText(apiStop)}, worker ${shutdownText(workerStop)}`;
        } finally {
          await deployment.close();
        }
      },
    };
  } catch (error) {
    await Promise.all(started.map((p) => stopChild(p.child)));
    await deployment.close();
    throw error;
  }
}
