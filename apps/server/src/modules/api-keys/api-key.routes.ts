import { createApiKeyBody } from "@mitte/contract";
import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors.js";
import type { ApiKeyService } from "./api-key.service.js";

export async function apiKeyRoutes(
  app: FastifyInstance,
  { apiKeys }: { apiKeys: ApiKeyService },
): Promise<void> {
  app.get("/api/v1/api-keys", async (request) => ({
    data: await apiKeys.list(request.userId),
    nextCursor: null,
  }));

  /** The full key is in this response only; the database keeps its SHA-256 and last 8 characters. */
  app.post("/api/v1/api-keys", async (request, reply) => {
    const { name } = createApiKeyBody.parse(request.body ?? {});
    const created = await apiKeys.create(request.userId, name);
    return reply.code(201).send({ ...created.view, key: created.key });
  });

  app.delete<{ Params: { id: string } }>("/api/v1/api-keys/:id", async (request, reply) => {
    if (!(await apiKeys.revoke(request.userId, request.params.id)))
      throw new AppError("not_found", "No API key with this id.");
    return reply.code(204).send();
  });
}
