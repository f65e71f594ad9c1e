import { listLogsQuery } from "@mitte/contract";
import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors.js";
import type { LogService } from "./log.service.js";

export async function logRoutes(app: FastifyInstance, { logs }: { logs: LogService }): Promise<void> {
  app.get("/api/v1/logs", async (request) => logs.list(request.userId, listLogsQuery.parse(request.query)));

  app.get<{ Params: { id: string } }>("/api/v1/logs/:id", async (request) => {
    const log = await logs.get(request.userId, request.params.id);
    if (!log) throw new AppError("not_found", "No log with this id.");
    return log;
  });
}
