import { z } from "zod";
import { createAddressPolicy } from "./lib/ssrf-guard.js";

/**
 * All configuration, parsed once at start-up from the environment. Feature code receives the parsed
 * object and never reads `process.env`. Every default is documented beside its field; units are in names.
 */
const boolFromEnv = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((value) => value === "true" || value === "1" || value === "yes");

// Digits only: Number() also reads "0x10" as 16 and "1e3" as 1000, which nobody means in a port or a limit.
const intFromEnv = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, "expected a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const envSchema = z.object({
  // http
  PORT: intFromEnv(0, 65_535).default(3000),
  HOST: z.string().min(1).default("0.0.0.0"),
  /** Base URL shown in ingest URLs; defaults to http://localhost:PORT. */
  MITTE_PUBLIC_URL: z.url().optional(),
  /** Trust X-Forwarded-For for the client IP (rate limiting) only behind a proxy you control. */
  MITTE_TRUST_PROXY: boolFromEnv.default(false),
  /**
   * A whole request (headers and body) must arrive within this time, else 408 and the connection is closed:
   * a sender trickling bytes cannot hold a connection forever. Default 30 s (10 MiB needs ~350 KB/s).
   */
  MITTE_REQUEST_TIMEOUT_MS: intFromEnv(1_000, 60 * 60 * 1000).default(30_000),
  /** Largest accepted webhook body; larger gets 413 and nothing is stored. Default 10 MiB. */
  MITTE_MAX_PAYLOAD_BYTES: intFromEnv(1, 100 * 1024 * 1024).default(10 * 1024 * 1024),
  /** Per-slug sliding-window limit per 60 s; 0 turns it off. */
  MITTE_RATE_LIMIT_ENDPOINT_PER_MIN: intFromEnv(0).default(100),
  /** Per-client-IP sliding-window limit per 60 s; 0 turns it off. */
  MITTE_RATE_LIMIT_IP_PER_MIN: intFromEnv(0).default(200),
  /** How long a client or endpoint stays blocked after exceeding a limit. Default 120 s. */
  MITTE_RATE_LIMIT_BLOCK_MS: intFromEnv(0).default(120_000),

  // storage
  MITTE_DATA_DIR: z.string().min(1).default("./data"),
  DATABASE_URL: z.string().optional(),
  /**
   * SQLite `synchronous` mode. NORMAL (default) with WAL survives process crashes (kill -9) with no loss;
   * FULL also survives power loss at the cost of an fsync per commit group.
   */
  MITTE_SQLITE_SYNCHRONOUS: z.enum(["NORMAL", "FULL"]).default("NORMAL"),

  /** Connections per process in the PostgreSQL pool (scale mode). */
  MITTE_PG_POOL_SIZE: intFromEnv(1, 1_000).default(10),
  /** PostgreSQL schema holding Mitte's tables (scale mode). */
  MITTE_PG_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/)
    .default("public"),

  // queue
  REDIS_URL: z.string().optional(),
  /** Prefix of every Redis key and BullMQ queue, so several deployments can share one Redis. */
  MITTE_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("mitte"),
  /** all: API + delivery + periodic jobs in one process; api: HTTP only; worker: delivery + periodic jobs. */
  MITTE_ROLE: z.enum(["all", "api", "worker"]).default("all"),
  /** Scale mode: how often the database is checked for webhooks whose queue job went missing. */
  MITTE_RECONCILE_EVERY_MS: intFromEnv(100).default(10_000),
  /** Scale mode: a waiting webhook untouched this long is checked against the queue. */
  MITTE_RECONCILE_AFTER_MS: intFromEnv(100).default(30_000),

  // delivery
  /** Whole-request timeout for one delivery attempt. Default 30 s. */
  MITTE_DELIVERY_TIMEOUT_MS: intFromEnv(100, 300_000).default(30_000),
  /** Deliveries in flight per worker process. */
  MITTE_DELIVERY_CONCURRENCY: intFromEnv(1, 10_000).default(128),
  /** Deliveries in flight per endpoint, so one slow target cannot take every slot. */
  MITTE_ENDPOINT_CONCURRENCY: intFromEnv(1, 10_000).default(16),
  /** On SIGTERM/SIGINT, running deliveries get this long to finish; then they are cut short and run again later. */
  MITTE_SHUTDOWN_GRACE_MS: intFromEnv(0, 10 * 60 * 1000).default(10_000),
  /** Response bodies are stored up to this size and marked truncated beyond. Default 64 KiB. */
  MITTE_MAX_RESPONSE_BYTES: intFromEnv(0, 10 * 1024 * 1024).default(64 * 1024),
  /** Comma-separated CIDRs the SSRF guard admits (e.g. 127.0.0.1/32 for a local target). Empty by default. */
  MITTE_ALLOW_PRIVATE_TARGETS: z
    .string()
    .default("")
    .transform((value) =>
      value
        .split(",")
        .map((cidr) => cidr.trim())
        .filter(Boolean),
    )
    .superRefine((cidrs, ctx) => {
      // Checked here, so that a typo is reported with the variable's name like every other bad value.
      try {
        createAddressPolicy(cidrs);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
      }
    }),
  /**
   * Stats, live events and endpoint-down checks after every delivery. On by default; `false` measures what
   * they cost (the benchmark does) or trims a minimal install.
   */
  MITTE_DELIVERY_MONITORING: boolFromEnv.default(true),
  /** Run the delivery worker in this process (embedded mode); `false` only ingests. */
  MITTE_DELIVERY_ENABLED: boolFromEnv.default(true),

  // mail
  /** Resend API key; without one, mail goes to the outbox (`npx mitte mail list`). */
  RESEND_API_KEY: z.string().optional(),
  /** Resend API base URL (tests point it at a local stand-in). */
  RESEND_BASE_URL: z.url().optional(),
  MITTE_MAIL_FROM: z.string().min(3).default("Mitte <notifications@mitte.localhost>"),

  // accounts
  /** Session lifetime, renewed while the session is used. Default 30 days. */
  MITTE_SESSION_TTL_MS: intFromEnv(60_000).default(30 * 24 * 60 * 60 * 1000),
  /** Login attempts per account and per client IP within 15 minutes before 429. */
  MITTE_LOGIN_ATTEMPTS_PER_ACCOUNT: intFromEnv(1).default(10),
  MITTE_LOGIN_ATTEMPTS_PER_IP: intFromEnv(1).default(50),

  // OAuth sign-in (a provider is offered when its client id and secret are set)
  GITHUB_CLIENT_ID: z.string().optional(),
  GITHUB_CLIENT_SECRET: z.string().optional(),
  GITHUB_AUTHORIZE_URL: z.url().default("https://github.com/login/oauth/authorize"),
  GITHUB_TOKEN_URL: z.url().default("https://github.com/login/oauth/access_token"),
  GITHUB_API_URL: z.url().default("https://api.github.com"),
  GOOGLE_CLIENT_ID: z.string().optional(),
  GOOGLE_CLIENT_SECRET: z.string().optional(),
  GOOGLE_AUTHORIZE_URL: z.url().default("https://accounts.google.com/o/oauth2/v2/auth"),
  GOOGLE_TOKEN_URL: z.url().default("https://oauth2.googleapis.com/token"),
  GOOGLE_USERINFO_URL: z.url().default("https://openidconnect.googleapis.com/v1/userinfo"),

  // security
  /** 32-byte key (hex or base64) for secrets at rest; embedded mode generates one in the data dir. */
  MITTE_SECRET_KEY: z.string().optional(),

  // logging
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  http: {
    port: number;
    host: string;
    publicUrl: string | undefined;
    trustProxy: boolean;
    requestTimeoutMs: number;
  };
  ingest: {
    maxPayloadBytes: number;
    rateLimitEndpointPerMin: number;
    rateLimitIpPerMin: number;
    rateLimitBlockMs: number;
  };
  storage: {
    dataDir: string;
    databaseUrl: string | undefined;
    sqliteSynchronous: "NORMAL" | "FULL";
    pgPoolSize: number;
    pgSchema: string;
  };
  queue: {
    redisUrl: string | undefined;
    redisPrefix: string;
    reconcileEveryMs: number;
    reconcileAfterMs: number;
  };
  role: "all" | "api" | "worker";
  delivery: {
    enabled: boolean;
    monitoring: boolean;
    timeoutMs: number;
    concurrency: number;
    endpointConcurrency: number;
    maxResponseBytes: number;
    allowPrivateTargets: string[];
    shutdownGraceMs: number;
  };
  security: { secretKey: string | undefined };
  mail: { resendApiKey: string | undefined; resendBaseUrl: string | undefined; from: string };
  accounts: { sessionTtlMs: number; loginAttemptsPerAccount: number; loginAttemptsPerIp: number };
  oauth: {
    github: {
      clientId: string;
      clientSecret: string;
      authorizeUrl: string;
      tokenUrl: string;
      apiUrl: string;
    } | null;
    google: {
      clientId: string;
      clientSecret: string;
      authorizeUrl: string;
      tokenUrl: string;
      userinfoUrl: string;
    } | null;
  };
  log: { level: Env["LOG_LEVEL"] };
}

/** A start-up refusal: one line per problem, under one heading, printed without a stack. */
export class ConfigError extends Error {
  override name = "ConfigError";

  constructor(...problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty (or blank) strings mean "unset" so `FOO= npm start` falls back to the default. (A blank PORT was
  // coerced to 0, and Mitte listened on a random port.)
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ""),
  );
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(...problems);
  }
  const e = parsed.data;
  if (e.DATABASE_URL && !e.REDIS_URL)
    throw new ConfigError("DATABASE_URL needs REDIS_URL (scale mode uses both).");
  if (e.REDIS_URL && !e.DATABASE_URL)
    throw new ConfigError("REDIS_URL needs DATABASE_URL (scale mode uses both).");
  if (!e.DATABASE_URL && e.MITTE_ROLE !== "all") {
    throw new ConfigError(
      "MITTE_ROLE api/worker needs scale mode (DATABASE_URL and REDIS_URL); embedded mode runs one process.",
    );
  }
  return {
    http: {
      port: e.PORT,
      host: e.HOST,
      publicUrl: e.MITTE_PUBLIC_URL,
      trustProxy: e.MITTE_TRUST_PROXY,
      requestTimeoutMs: e.MITTE_REQUEST_TIMEOUT_MS,
    },
    ingest: {
      maxPayloadBytes: e.MITTE_MAX_PAYLOAD_BYTES,
      rateLimitEndpointPerMin: e.MITTE_RATE_LIMIT_ENDPOINT_PER_MIN,
      rateLimitIpPerMin: e.MITTE_RATE_LIMIT_IP_PER_MIN,
      rateLimitBlockMs: e.MITTE_RATE_LIMIT_BLOCK_MS,
    },
    storage: {
      dataDir: e.MITTE_DATA_DIR,
      databaseUrl: e.DATABASE_URL,
      sqliteSynchronous: e.MITTE_SQLITE_SYNCHRONOUS,
      pgPoolSize: e.MITTE_PG_POOL_SIZE,
      pgSchema: e.MITTE_PG_SCHEMA,
    },
    queue: {
      redisUrl: e.REDIS_URL,
      redisPrefix: e.MITTE_REDIS_PREFIX,
      reconcileEveryMs: e.MITTE_RECONCILE_EVERY_MS,
      reconcileAfterMs: e.MITTE_RECONCILE_AFTER_MS,
    },
    role: e.MITTE_ROLE,
    delivery: {
      enabled: e.MITTE_DELIVERY_ENABLED,
      monitoring: e.MITTE_DELIVERY_MONITORING,
      timeoutMs: e.MITTE_DELIVERY_TIMEOUT_MS,
      concurrency: e.MITTE_DELIVERY_CONCURRENCY,
      endpointConcurrency: e.MITTE_ENDPOINT_CONCURRENCY,
      maxResponseBytes: e.MITTE_MAX_RESPONSE_BYTES,
      allowPrivateTargets: e.MITTE_ALLOW_PRIVATE_TARGETS,
      shutdownGraceMs: e.MITTE_SHUTDOWN_GRACE_MS,
    },
    security: { secretKey: e.MITTE_SECRET_KEY },
    oauth: {
      github:
        e.GITHUB_CLIENT_ID && e.GITHUB_CLIENT_SECRET
          ? {
              clientId: e.GITHUB_CLIENT_ID,
              clientSecret: e.GITHUB_CLIENT_SECRET,
              authorizeUrl: e.GITHUB_AUTHORIZE_URL,
              tokenUrl: e.GITHUB_TOKEN_URL,
              apiUrl: e.GITHUB_API_URL,
            }
          : null,
      google:
        e.GOOGLE_CLIENT_ID && e.GOOGLE_CLIENT_SECRET
          ? {
              clientId: e.GOOGLE_CLIENT_ID,
              clientSecret: e.GOOGLE_CLIENT_SECRET,
              authorizeUrl: e.GOOGLE_AUTHORIZE_URL,
              tokenUrl: e.GOOGLE_TOKEN_URL,
              userinfoUrl: e.GOOGLE_USERINFO_URL,
            }
          : null,
    },
    mail: { resendApiKey: e.RESEND_API_KEY, resendBaseUrl: e.RESEND_BASE_URL, from: e.MITTE_MAIL_FROM },
    accounts: {
      sessionTtlMs: e.MITTE_SESSION_TTL_MS,
      loginAttemptsPerAccount: e.MITTE_LOGIN_ATTEMPTS_PER_ACCOUNT,
      loginAttemptsPerIp: e.MITTE_LOGIN_ATTEMPTS_PER_IP,
    },
    log: { level: e.LOG_LEVEL },
  };
}
