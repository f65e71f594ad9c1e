import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors.js";
import type { EndpointService } from "../endpoints/endpoint.service.js";
import type { StatsService } from "./stats.service.js";

export async function statsRoutes(
  app: FastifyInstance,
  { stats, endpoints }: { stats: StatsService; endpoints: EndpointService },
): Promise<void> {
  app.get("/api/v1/stats", async (request) => stats.userStats(request.userId));

  app.get<{ Params: { id: string } }>("/api/v1/endpoints/:id/stats", async (request) => {
    if (!(await endpoints.get(request.userId, request.params.id)))
      throw new AppError("not_found", "No endpoint with this id.");
    return stats.endpointStats(request.params.id);
  });
}
