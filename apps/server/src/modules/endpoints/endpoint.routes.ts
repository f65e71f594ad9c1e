import { createEndpointBody, listQuery, sendTestBody, updateEndpointBody } from "@mitte/contract";
import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors.js";
import { type AddressPolicy, blockedIpLiteral } from "../../lib/ssrf-guard.js";
import type { IngestService } from "../ingest/ingest.service.js";
import type { EndpointService } from "./endpoint.service.js";
import type { EndpointDirectory } from "./endpoint-directory.js";

export interface EndpointRoutesOptions {
  endpoints: EndpointService;
  directory: EndpointDirectory;
  ingest: IngestService;
  /** The delivery SSRF policy: a target that is a blocked IP literal is refused when it is saved. */
  policy: AddressPolicy;
}

type IdParams = { Params: { id: string } };

const notFound = () => new AppError("not_found", "No endpoint with this id.");

/** Refuses a target that delivery would refuse anyway; names are checked at delivery, when resolved. */
function assertDeliverable(targetUrl: string | undefined, policy: AddressPolicy): void {
  if (targetUrl === undefined) return;
  const reason = blockedIpLiteral(targetUrl, policy);
  if (reason)
    throw new AppError(
      "validation_failed",
      `targetUrl: points at an address Mitte does not deliver to (${reason}); an operator can allow private ranges with MITTE_ALLOW_PRIVATE_TARGETS.`,
    );
}

const DEFAULT_TEST_PAYLOAD = {
  type: "mitte.test",
  message: "This is a test webhook sent from Mitte.",
  data: { example: true },
};

export async function endpointRoutes(
  app: FastifyInstance,
  { endpoints, directory, ingest, policy }: EndpointRoutesOptions,
): Promise<void> {
  app.post("/api/v1/endpoints", async (request, reply) => {
    const body = createEndpointBody.parse(request.body);
    assertDeliverable(body.targetUrl, policy);
    const result = await endpoints.create(request.userId, body);
    switch (result.outcome) {
      case "created":
        return reply.code(201).send(result.endpoint);
      case "plan_limit_reached":
        throw new AppError("plan_limit_reached", `Your plan allows ${result.limit} endpoints.`);
      default:
        return result satisfies never;
    }
  });

  app.get("/api/v1/endpoints", async (request) =>
    endpoints.list(request.userId, listQuery.parse(request.query)),
  );

  app.get<IdParams>("/api/v1/endpoints/:id", async (request) => {
    return (await endpoints.get(request.userId, request.params.id)) ?? Promise.reject(notFound());
  });

  app.patch<IdParams>("/api/v1/endpoints/:id", async (request) => {
    const patch = updateEndpointBody.parse(request.body);
    assertDeliverable(patch.targetUrl, policy);
    return (await endpoints.update(request.userId, request.params.id, patch)) ?? Promise.reject(notFound());
  });

  app.delete<IdParams>("/api/v1/endpoints/:id", async (request, reply) => {
    if (!(await endpoints.remove(request.userId, request.params.id))) throw notFound();
    return reply.code(204).send();
  });

  app.post<IdParams>("/api/v1/endpoints/:id/rotate-secret", async (request) => {
    return (await endpoints.rotateSecret(request.userId, request.params.id)) ?? Promise.reject(notFound());
  });

  /** Test webhooks go through the same pipeline, marked test, one attempt, outside quota and rate limits. */
  app.post<IdParams>("/api/v1/endpoints/:id/test", async (request, reply) => {
    const body = sendTestBody.parse(request.body ?? undefined);
    const endpoint = await directory.byId(request.params.id);
    if (!endpoint || endpoint.userId !== request.userId) throw notFound();
    let payload: Buffer;
    try {
      payload = Buffer.from(JSON.stringify(body?.payload ?? DEFAULT_TEST_PAYLOAD));
    } catch {
      // JSON.parse takes any depth; JSON.stringify runs out of stack on thousands of levels (a RangeError, a 500).
      throw new AppError("validation_failed", "payload: nested too deeply to send.");
    }
    const outcome = await ingest.accept(
      endpoint,
      {
        method: "POST",
        query: "",
        headers: { "content-type": "application/json", "user-agent": "Mitte-Test/1.0" },
        body: payload,
      },
      { isTest: true },
    );
    if (outcome.outcome === "unavailable")
      throw new AppError("service_unavailable", "Mitte cannot queue webhooks right now.");
    if (outcome.outcome === "endpoint_not_found") throw notFound();
    if (outcome.outcome !== "accepted") throw new AppError("internal_error", "test webhook was not accepted");
    return reply.code(202).send({ id: outcome.logId, status: "queued" });
  });
}
