import { listNotificationsQuery, updatePreferencesBody } from "@mitte/contract";
import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors.js";
import { type AddressPolicy, blockedIpLiteral } from "../../lib/ssrf-guard.js";
import type { NotificationService } from "./notification.service.js";

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
    // As for endpoint targets: an IP literal the guard blocks is refused now; a name is resolved and checked
    // at every send, never here (resolving it here would tell the caller what Mitte's internal DNS knows).
    const reason = patch.webhookUrl ? blockedIpLiteral(patch.webhookUrl, policy) : null;
    if (reason)
      throw new AppError("validation_failed", `webhookUrl: a private or internal address (${reason}).`);
    const next = { ...patch } as Parameters<NotificationService["updatePreferences"]>[1];
    return notifications.updatePreferences(request.userId, next);
  });
}
