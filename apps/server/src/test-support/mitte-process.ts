import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const cliEntry = fileURLToPath(new URL("../../../cli/src/main.ts", import.meta.url));
/** Runs the CLI from TypeScript sources, so process tests need no build step. */
const nodeArgs = ["--conditions=mitte-source", "--import", "tsx", cliEntry];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export async function runCli(args: string[], env: Record<string, string>): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [...nodeArgs, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return stdout;
}

export interface MitteProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | string>;
}

/** Starts `mitte start` as a real child process and waits until /healthz answers. */
export async function startMitteProcess(
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<MitteProcess> {
  const port = env.PORT ?? String(await freePort());
  const child = spawn(process.execPath, [...nodeArgs, "start"], {
    cwd: repoRoot,
    env: { ...process.env, HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env, PORT: port },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`mitte exited during start:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`mitte did not become healthy in ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, url, output: () => output, exited };
}

/** What a process under test needs in either mode: loopback targets allowed (the sinks), no rate limits. */
const PROCESS_TEST_ENV = {
  MITTE_ALLOW_PRIVATE_TARGETS: "127.0.0.1/32",
  MITTE_RATE_LIMIT_ENDPOINT_PER_MIN: "0",
  MITTE_RATE_LIMIT_IP_PER_MIN: "0",
};

/** Environment of an embedded-mode process in tests, on `dataDir`. */
export function embeddedProcessEnv(dataDir: string): Record<string, string> {
  return { MITTE_DATA_DIR: dataDir, ...PROCESS_TEST_ENV };
}

/** Environment of a scale-mode process in tests: fast reconciler and short timeouts so recovery is quick. */
export function scaleProcessEnv(options: {
  databaseUrl: string;
  schema: string;
  redisUrl: string;
  prefix?: string;
}): Record<string, string> {
  return {
    DATABASE_URL: options.databaseUrl,
    MITTE_PG_SCHEMA: options.schema,
    MITTE_PG_POOL_SIZE: "5",
    REDIS_URL: options.redisUrl,
    ...(options.prefix ? { MITTE_REDIS_PREFIX: options.prefix } : {}),
    MITTE_SECRET_KEY: "11".repeat(32),
    ...PROCESS_TEST_ENV,
    MITTE_DELIVERY_TIMEOUT_MS: "2000",
    MITTE_RECONCILE_EVERY_MS: "1000",
    MITTE_RECONCILE_AFTER_MS: "3000",
  };
}

/** Creates a user (Pro unless told) with the CLI and an endpoint through the REST API of a running process. */
export async function provisionEndpoint(
  env: Record<string, string>,
  apiUrl: string,
  email: string,
  targetUrl: string,
  plan: "free" | "pro" = "pro",
) {
  const { apiKey } = JSON.parse(
    await runCli(["user", "create", "--email", email, "--plan", plan, "--json"], env),
  ) as { apiKey: string };
  const created = await fetch(`${apiUrl}/api/v1/endpoints`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: email.split("@")[0], targetUrl }),
  });
  if (created.status !== 201)
    throw new Error(`creating the endpoint failed: ${created.status} ${await created.text()}`);
  const endpoint = (await created.json()) as { id: string; slug: string };
  return { apiKey, ...endpoint };
}

/** Sends one webhook to a running process; returns its log id (the request must get its 202). */
export async function sendWebhook(apiUrl: string, slug: string, body: unknown = {}): Promise<string> {
  const response = await fetch(`${apiUrl}/api/v1/h/${slug}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.status !== 202)
    throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

/** Polls a log through the REST API until it has `status` (up to `timeoutMs`); returns the last answer. */
export async function waitForLogStatus(
  apiUrl: string,
  apiKey: string,
  id: string,
  status: string,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${apiUrl}/api/v1/logs/${id}`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    const log = (await response.json()) as Record<string, unknown>;
    if (log.status === status || Date.now() > deadline) return log;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
