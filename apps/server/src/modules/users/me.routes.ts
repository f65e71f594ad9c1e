import { updateMeBody } from "@mitte/contract";
import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors.js";
import type { ApiKeyService } from "../api-keys/api-key.service.js";
import type { SessionService } from "../auth/session.service.js";
import type { EndpointDirectory } from "../endpoints/endpoint-directory.js";
import type { UserService } from "./user.service.js";

export interface MeRoutesOptions {
  users: UserService;
  apiKeys: ApiKeyService;
  sessions: SessionService;
  directory: EndpointDirectory;
  nowMs: () => number;
}

/** The signed-in user's own account: profile, "log out everywhere", data export, deletion. */
export async function meRoutes(
  app: FastifyInstance,
  { users, apiKeys, sessions, directory, nowMs }: MeRoutesOptions,
): Promise<void> {
  app.get("/api/v1/me", async (request) => {
    const me = await users.profile(request.userId, nowMs());
    if (!me) throw new AppError("unauthorized", "This account no longer exists.");
    return me;
  });

  app.patch("/api/v1/me", async (request) => {
    await users.updateProfile(request.userId, updateMeBody.parse(request.body));
    return users.profile(request.userId, nowMs());
  });

  app.post("/api/v1/auth/logout-all", async (request, reply) => {
    await sessions.revokeAll(request.userId);
    return reply.code(204).send();
  });

  app.get("/api/v1/me/export", async (request, reply) => {
    const data = await users.exportData(request.userId);
    reply.header(
      "content-disposition",
      `attachment; filename="mitte-export-${new Date(nowMs()).toISOString().slice(0, 10)}.json"`,
    );
    return data;
  });

  app.delete("/api/v1/me", async (request, reply) => {
    await users.deleteAccount(request.userId);
    apiKeys.forgetUser(request.userId);
    await directory.invalidateUser(request.userId);
    return reply
      .code(204)
      .header("set-cookie", "mitte_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax")
      .send();
  });
}
