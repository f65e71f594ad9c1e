import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from "fastify";
import { sql } from "kysely";
import type { Deps } from "./deps.js";
import { AppError, type ErrorCode, errorBody, errorStatus } from "./errors.js";
import { clientErrorHandler, closeAfterAnswer, httpServerTimeouts } from "./lib/http-guard.js";
import { apiKeyRoutes } from "./modules/api-keys/api-key.routes.js";
import { authRoutes } from "./modules/auth/auth.routes.js";
import { requireUser } from "./modules/auth/authenticate.js";
import { oauthRoutes } from "./modules/auth/oauth.routes.js";
import { resetPasswordPage } from "./modules/auth/reset-password.page.js";
import { endpointRoutes } from "./modules/endpoints/endpoint.routes.js";
import { eventsRoutes } from "./modules/events/events.routes.js";
import { ingestRoutes } from "./modules/ingest/ingest.routes.js";
import { logRoutes } from "./modules/logs/log.routes.js";
import { notificationRoutes } from "./modules/notifications/notification.routes.js";
import { statsRoutes } from "./modules/stats/stats.routes.js";
import { meRoutes } from "./modules/users/me.routes.js";
import type { Services } from "./services.js";
import { isStorageUnavailable } from "./storage/unavailable.js";

/** Body limit of the JSON management API (webhook bodies have their own, larger limit). */
const API_BODY_LIMIT_BYTES = 1024 * 1024;

declare module "fastify" {
  interface FastifyInstance {
    /** Every route behind authentication; the tenant-isolation suite checks each one. */
    authenticatedRoutes: readonly { method: string; url: string }[];
  }
}

interface ZodLikeError {
  name: "ZodError";
  issues: { path: PropertyKey[]; message: string }[];
}

function isZodError(error: unknown): error is ZodLikeError {
  return (
    error instanceof Error &&
    error.name === "ZodError" &&
    Array.isArray((error as Partial<ZodLikeError>).issues)
  );
}

/** Maps any thrown error to the one JSON error shape; unexpected errors are logged, never shown. */
function toErrorResponse(error: unknown): {
  status: number;
  code: ErrorCode;
  message: string;
  details?: unknown;
} {
  if (error instanceof AppError)
    return { status: error.status, code: error.code, message: error.message, details: error.details };
  if (isZodError(error)) {
    const details = error.issues.map((issue) => ({
      path: issue.path.map(String).join("."),
      message: issue.message,
    }));
    const first = details[0];
    return {
      status: 400,
      code: "validation_failed",
      message: first ? `${first.path || "request"}: ${first.message}` : "invalid input",
      details,
    };
  }
  const fastifyError = error as Partial<FastifyError>;
  switch (fastifyError.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return {
        status: 413,
        code: "payload_too_large",
        message: "The request body is larger than the limit.",
      };
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return {
        status: 415,
        code: "unsupported_media_type",
        message: "Send JSON with Content-Type: application/json.",
      };
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return { status: 400, code: "invalid_json", message: "The request body is not valid JSON." };
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return { status: 400, code: "bad_request", message: "Content-Length does not match the body." };
  }
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) {
    return { status: 400, code: "invalid_json", message: "The request body is not valid JSON." };
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return {
      status,
      code: status === 413 ? "payload_too_large" : "bad_request",
      message: fastifyError.message ?? "bad request",
    };
  }
  if (isStorageUnavailable(error)) {
    return {
      status: 503,
      code: "service_unavailable",
      message: "The database is not reachable right now; nothing was accepted. Retry shortly.",
    };
  }
  return {
    status: 500,
    code: "internal_error",
    message: "Something went wrong on our side; nothing you sent was lost.",
  };
}

export interface BuildAppOptions {
  /** Worker processes serve only /healthz and /readyz. */
  healthOnly?: boolean;
}

export async function buildApp(
  deps: Deps,
  services: Services,
  options: BuildAppOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request access logs would cost more than ingestion itself; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify gives every request's child logger an options object, usually empty, and pino's child() takes
    // its slow path (redaction set up again) whenever it gets one: pass options only when a route has some.
    childLoggerFactory: (logger, bindings, options) =>
      logger.child(bindings, Object.keys(options).length > 0 ? options : undefined),
    trustProxy: deps.config.http.trustProxy,
    bodyLimit: API_BODY_LIMIT_BYTES,
    return503OnClosing: true,
    // Requests Fastify refuses before routing (a URL that does not decode, an overlong parameter) answer in
    // Mitte's error shape too, without echoing the URL (its query may carry a token).
    frameworkErrors: (error, _request, reply) => {
      // Fastify types this reply by route generics that do not apply before routing.
      (reply as unknown as FastifyReply)
        .code(400)
        .send(errorBody("bad_request", `The request URL is malformed (${error.code}).`));
    },
    // A whole request must arrive within MITTE_REQUEST_TIMEOUT_MS (408), and what Node's parser rejects
    // (timeout, oversized headers, bad framing) answers in the JSON error shape: see lib/http-guard.ts.
    ...httpServerTimeouts(deps.config.http.requestTimeoutMs),
    clientErrorHandler,
  });

  // The management API takes JSON only. Fastify also parses text/plain by default, which turned a JSON body
  // sent as text into a string and a confusing 400; without the parser it is a 415 like any other type.
  // (Ingest has its own parsers: any content type, kept as bytes.)
  app.removeContentTypeParser("text/plain");

  // An error answered before the whole body arrived (413 while reading, a refusal before the body is read)
  // closes the connection instead of reading the rest of the upload, lingering so the answer is not lost.
  app.addHook("onSend", (request, reply, payload, done) => {
    if (reply.statusCode >= 400 && request.raw.complete === false) {
      reply.header("connection", "close");
      closeAfterAnswer(request.raw.socket);
    }
    done(null, payload);
  });

  const authenticatedRoutes: { method: string; url: string }[] = [];
  app.decorate("authenticatedRoutes", authenticatedRoutes);

  app.setErrorHandler((error, request, reply) => {
    const response = toErrorResponse(error);
    // The path only: query strings carry tokens (email verification, OAuth codes, senders' own secrets).
    if (response.status >= 500)
      request.log.error({ err: error, path: request.url.split("?")[0] }, "request failed");
    if (response.status === 503) reply.header("retry-after", 5);
    reply.code(response.status).send(errorBody(response.code, response.message, response.details));
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(errorStatus.not_found)
      .send(errorBody("not_found", `No route for ${request.method} ${request.url.split("?")[0]}.`));
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (request, reply) => {
    try {
      await sql`select 1`.execute(deps.storage.db);
    } catch {
      return reply.code(503).send(errorBody("service_unavailable", "The database is not reachable."));
    }
    try {
      deps.storage.check?.();
    } catch (error) {
      request.log.error({ err: error }, "database file lost");
      return reply
        .code(503)
        .send(errorBody("service_unavailable", "The database file was deleted or replaced; restart Mitte."));
    }
    if (!deps.brokerReady() || !deps.queue.isReady()) {
      return reply
        .code(503)
        .send(errorBody("service_unavailable", "The queue is not reachable or not consuming."));
    }
    return { status: "ready" };
  });
  if (options.healthOnly) return app;

  await app.register(ingestRoutes, {
    ingest: services.ingest,
    maxPayloadBytes: deps.config.ingest.maxPayloadBytes,
  });
  const nowMs = () => deps.clock.now();
  await app.register(authRoutes, {
    accounts: services.accounts,
    sessions: services.sessions,
    secureCookies: services.publicUrl.startsWith("https:"),
    nowMs,
    trustedOrigins: [new URL(services.publicUrl).origin],
  });

  await app.register(resetPasswordPage);
  await app.register(oauthRoutes, {
    oauth: services.oauth,
    secureCookies: services.publicUrl.startsWith("https:"),
    sessionTtlMs: deps.config.accounts.sessionTtlMs,
  });

  // Everything registered in this scope requires an API key or a session.
  await app.register(async (api) => {
    api.addHook("onRoute", (route) => {
      route.config = { ...(route.config as object), authenticated: true };
      for (const method of [route.method].flat()) authenticatedRoutes.push({ method, url: route.url });
    });
    api.addHook(
      "onRequest",
      requireUser(services.apiKeys, services.sessions, [new URL(services.publicUrl).origin], {
        secureCookies: services.publicUrl.startsWith("https:"),
        nowMs,
      }),
    );
    await api.register(endpointRoutes, {
      endpoints: services.endpoints,
      directory: services.directory,
      ingest: services.ingest,
      policy: deps.addressPolicy,
    });
    await api.register(logRoutes, { logs: services.logs });
    await api.register(apiKeyRoutes, { apiKeys: services.apiKeys });
    await api.register(notificationRoutes, {
      notifications: services.notifications,
      policy: deps.addressPolicy,
    });
    await api.register(eventsRoutes, { hub: services.hub });
    await api.register(statsRoutes, { stats: services.stats, endpoints: services.endpoints });
    await api.register(meRoutes, {
      users: services.users,
      apiKeys: services.apiKeys,
      sessions: services.sessions,
      directory: services.directory,
      nowMs,
    });
  });

  answerWrongMethodsWith405(app, authenticatedRoutes);
  return app;
}

/**
 * A known API path asked with a method it does not have answers 405 with `Allow`, not "no route" 404.
 * Registered after every route, from the authenticated routes' list (ingest URLs have their own 405).
 */
function answerWrongMethodsWith405(
  app: FastifyInstance,
  routes: readonly { method: string; url: string }[],
): void {
  const methodsByUrl = new Map<string, Set<string>>();
  for (const { method, url } of routes) {
    const methods = methodsByUrl.get(url) ?? new Set<string>();
    methods.add(method);
    if (method === "GET") methods.add("HEAD");
    methodsByUrl.set(url, methods);
  }
  for (const [url, methods] of methodsByUrl) {
    const missing = ["GET", "POST", "PUT", "PATCH", "DELETE"].filter((method) => !methods.has(method));
    if (missing.length === 0) continue;
    const allow = [...methods].join(", ");
    app.route({
      method: missing,
      url,
      handler: async (_request, reply) => {
        reply.header("allow", allow);
        throw new AppError("method_not_allowed", `Use ${allow} on this URL.`);
      },
    });
  }
}
