import type { Deps } from "./deps.js";
import { createApiKeyService } from "./modules/api-keys/api-key.service.js";
import { createAccountService } from "./modules/auth/account.service.js";
import { createOauthService } from "./modules/auth/oauth.service.js";
import { configuredOauthProviders } from "./modules/auth/oauth-providers.js";
import { createOneTimeTokens } from "./modules/auth/one-time-tokens.js";
import { createSessionService } from "./modules/auth/session.service.js";
import { createDeliveryService, type DeliveryOutcomeEvent } from "./modules/delivery/delivery.service.js";
import { createReconciler } from "./modules/delivery/reconciler.js";
import { createEndpointService } from "./modules/endpoints/endpoint.service.js";
import { EndpointDirectory } from "./modules/endpoints/endpoint-directory.js";
import { EventHub } from "./modules/events/event-hub.js";
import { createIngestService } from "./modules/ingest/ingest.service.js";
import { createLogService } from "./modules/logs/log.service.js";
import { createMonitors } from "./modules/notifications/monitors.js";
import { createNotificationService } from "./modules/notifications/notification.service.js";
import { createRetentionService } from "./modules/retention/retention.service.js";
import { createStatsService } from "./modules/stats/stats.service.js";
import { createUserService } from "./modules/users/user.service.js";

/** Builds every feature service from the shared dependencies; routes, jobs and the CLI call these. */
export function createServices(
  deps: Deps,
  options: { deliveryListeners?: ((event: DeliveryOutcomeEvent) => void)[] } = {},
) {
  const { config, storage, clock, newId, secretBox, queue, logger } = deps;
  const directory = new EndpointDirectory({
    storage,
    clock,
    secretBox,
    ...(deps.pubsub ? { pubsub: deps.pubsub } : {}),
  });
  const apiKeys = createApiKeyService({ storage, clock, newId });
  const users = createUserService({ storage, clock, newId, apiKeys });
  const publicUrl = (config.http.publicUrl ?? `http://localhost:${config.http.port}`).replace(/\/+$/, "");
  const sessions = createSessionService({ storage, clock, newId, ttlMs: config.accounts.sessionTtlMs });
  const FIFTEEN_MINUTES = 15 * 60 * 1000;
  const accounts = createAccountService({
    storage,
    clock,
    users,
    sessions,
    tokens: createOneTimeTokens({ storage, clock, newId }),
    mailer: deps.mailer,
    publicUrl,
    loginLimiterByAccount: deps.createRateLimiter(
      "login-account",
      config.accounts.loginAttemptsPerAccount,
      FIFTEEN_MINUTES,
      FIFTEEN_MINUTES,
    ),
    loginLimiterByIp: deps.createRateLimiter(
      "login-ip",
      config.accounts.loginAttemptsPerIp,
      FIFTEEN_MINUTES,
      FIFTEEN_MINUTES,
    ),
    // 5 reset mails an hour per address is plenty for a person and useless for flooding.
    resetMailLimiter: deps.createRateLimiter("reset-mail", 5, 60 * 60 * 1000, 60 * 60 * 1000),
  });
  const endpoints = createEndpointService({ storage, clock, newId, secretBox, directory, queue, publicUrl });
  const { rateLimitEndpointPerMin, rateLimitIpPerMin, rateLimitBlockMs } = config.ingest;
  const ingest = createIngestService({
    storage,
    clock,
    newId,
    queue,
    directory,
    usage: deps.usage,
    brokerReady: deps.brokerReady,
    endpointLimiter:
      rateLimitEndpointPerMin > 0
        ? deps.createRateLimiter("endpoint", rateLimitEndpointPerMin, 60_000, rateLimitBlockMs)
        : null,
    ipLimiter:
      rateLimitIpPerMin > 0
        ? deps.createRateLimiter("ip", rateLimitIpPerMin, 60_000, rateLimitBlockMs)
        : null,
  });
  const hub = new EventHub({ clock, newId, pubsub: deps.pubsub });
  const notifications = createNotificationService({
    storage,
    clock,
    newId,
    logger,
    mailer: deps.mailer,
    outbound: deps.outbound,
    hub,
  });
  const stats = createStatsService({
    storage,
    clock,
    logger,
    store: deps.statsStore,
    directory,
    notifications,
  });
  const monitors = createMonitors({
    storage,
    clock,
    logger,
    notifications,
    directory,
    streaks: deps.failureStreaks,
  });
  // After every attempt: the live event for dashboards, and the endpoint-down watch. Neither may slow or
  // fail the delivery itself; their work is tracked so tests and shutdown can wait for it.
  const afterDelivery = new Set<Promise<void>>();
  const onDeliveryOutcome = (event: DeliveryOutcomeEvent) => {
    stats.record(event);
    // Most outcomes need nothing more (a success on a healthy endpoint nobody is watching): no promise then.
    const publish = hub.hasAudience(event.userId);
    const monitor = monitors.wantsOutcome(event);
    if (!publish && !monitor) return;
    const work = Promise.all([
      publish
        ? hub.publish(event.userId, "webhook:delivered", {
            logId: event.logId,
            endpointId: event.endpointId,
            status: event.status,
            success: event.success,
            attempt: event.attempt,
            responseStatus: event.responseStatus,
            errorKind: event.errorKind,
            durationMs: event.durationMs,
            test: event.isTest,
          })
        : undefined,
      monitor ? monitors.onDeliveryOutcome(event) : undefined,
    ])
      .then(() => undefined)
      .catch((error: unknown) => logger.warn({ err: error }, "after-delivery work failed"))
      .finally(() => afterDelivery.delete(work));
    afterDelivery.add(work);
  };
  const delivery = createDeliveryService({
    storage,
    clock,
    newId,
    logger,
    directory,
    outbound: deps.outbound,
    random: deps.random,
    timeoutMs: config.delivery.timeoutMs,
    maxResponseBytes: config.delivery.maxResponseBytes,
    listeners: [
      ...(config.delivery.monitoring ? [onDeliveryOutcome] : []),
      ...(options.deliveryListeners ?? []),
    ],
  });
  const logs = createLogService({ storage });
  const retention = createRetentionService({ storage, clock, logger });
  const reconciler = createReconciler({
    storage,
    clock,
    queue,
    logger,
    staleAfterMs: config.queue.reconcileAfterMs,
    deliveringStaleMs: config.delivery.timeoutMs * 2 + 90_000,
  });
  const oauth = createOauthService({
    storage,
    clock,
    logger,
    users,
    sessions,
    providers: configuredOauthProviders(config.oauth),
    publicUrl,
  });
  return {
    directory,
    apiKeys,
    users,
    sessions,
    accounts,
    oauth,
    hub,
    notifications,
    monitors,
    stats,
    /** Waits for live events, monitors and notification channels started by past deliveries. */
    async settle(): Promise<void> {
      await Promise.all([...afterDelivery]);
      await stats.flush();
      await notifications.flushChannels();
    },
    /**
     * Shutdown, after the queue stopped (attempts still running at the end of its grace period were cut
     * short by `delivery.abandon()`, its onGraceEnd): writes what finished attempts started.
     */
    async afterQueueClosed(): Promise<void> {
      await delivery.flush();
      await this.settle();
    },
    publicUrl,
    endpoints,
    ingest,
    delivery,
    logs,
    retention,
    reconciler,
  };
}

export type Services = ReturnType<typeof createServices>;
