import { lookup } from "node:dns/promises";
import { listNotificationsQuery, updatePreferencesBody } from "@mitte/contract";
import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors.js";
import type { AddressPolicy } from "../../lib/ssrf-guard.js";
import type { NotificationService } from "./notification.service.js";

/** Refuses a channel URL whose host resolves to an address the SSRF guard would block anyway. */
async function privateAddressOf(url: string, policy: AddressPolicy): Promise<string | null> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  try {
    addresses = (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);
  } catch {
    return null; // Unresolvable now; the guard decides at send time.
  }
  return addresses.find((address) => !policy.check(address).allowed) ?? null;
}

export async function notificationRoutes(
  app: FastifyInstance,
  { notifications, policy }: { notifications: NotificationService; policy: AddressPolicy },
): Promise<void> {
  app.get("/api/v1/notifications", async (request) =>
    notifications.list(request.userId, listNotificationsQuery.parse(request.query)),
  );

  app.post<{ Params: { id: string } }>("/api/v1/notifications/:id/read", async (request, reply) => {
    if (!(await notifications.markRead(request.userId, request.params.id)))
      throw new AppError("not_found", "No notification with this id.");
    return reply.code(204).send();
  });

  app.post("/api/v1/notifications/read-all", async (request) => ({
    updated: await notifications.markAllRead(request.userId),
  }));

  app.get("/api/v1/notification-preferences", async (request) => notifications.preferences(request.userId));

  app.put("/api/v1/notification-preferences", async (request) => {
    const patch = updatePreferencesBody.parse(request.body);
    if (patch.webhookUrl) {
      const blocked = await privateAddressOf(patch.webhookUrl, policy);
      if (blocked)
        throw new AppError(
          "validation_failed",
          `webhookUrl: points at a private or internal address (${blocked}).`,
        );
    }
    const next = { ...patch } as Parameters<NotificationService["updatePreferences"]>[1];
    return notifications.updatePreferences(request.userId, next);
  });
}
