import type { FastifyInstance, FastifyReply } from "fastify";
import { AppError, errorBody } from "../../errors.js";
import type { AdmitOutcome, IngestService } from "./ingest.service.js";
import type { RateLimitDecision } from "./rate-limiter.js";

declare module "fastify" {
  interface FastifyRequest {
    admission: Extract<AdmitOutcome, { outcome: "admitted" }> | null;
  }
}

export interface IngestRoutesOptions {
  ingest: IngestService;
  maxPayloadBytes: number;
}

const INGEST_URL = "/api/v1/h/:slug";

function setRateLimitHeaders(reply: FastifyReply, decision: RateLimitDecision | null): void {
  if (!decision) return;
  reply.header("x-ratelimit-limit", decision.limit);
  reply.header("x-ratelimit-remaining", decision.remaining);
  reply.header("x-ratelimit-reset", decision.resetSeconds);
}

/** `POST|PUT|PATCH /api/v1/h/:slug`: the public ingest URL providers send webhooks to. */
export async function ingestRoutes(
  app: FastifyInstance,
  { ingest, maxPayloadBytes }: IngestRoutesOptions,
): Promise<void> {
  // Bodies are opaque bytes, whatever the content type: stored and forwarded exactly as received.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: maxPayloadBytes }, (_request, body, done) =>
    done(null, body),
  );
  app.decorateRequest("admission", null);

  app.route<{ Params: { slug: string } }>({
    method: ["POST", "PUT", "PATCH"],
    url: INGEST_URL,
    bodyLimit: maxPayloadBytes,
    // Refusals that need no body run before the body is read: an unknown slug or a blocked sender costs
    // no upload. Payload size is then enforced while reading (413), before anything is stored.
    onRequest: async (request, reply) => {
      const admission = await ingest.admit(request.params.slug, request.ip);
      switch (admission.outcome) {
        case "admitted":
          request.admission = admission;
          return;
        case "endpoint_not_found":
          throw new AppError("not_found", "No endpoint with this URL.");
        case "unavailable":
          throw new AppError("service_unavailable", "Mitte cannot queue webhooks right now; retry shortly.");
        case "rate_limited":
          setRateLimitHeaders(reply, admission.decision);
          reply.header("retry-after", admission.decision.retryAfterSeconds ?? 60);
          throw new AppError("rate_limited", "Too many requests");
        case "quota_exceeded":
          reply.header("retry-after", admission.retryAfterSeconds);
          throw new AppError("quota_exceeded", "Monthly request quota exceeded for this account.");
        default:
          admission satisfies never;
      }
    },
    handler: async (request, reply) => {
      const admission = request.admission!;
      const url = request.raw.url ?? "";
      const queryStart = url.indexOf("?");
      const outcome = await ingest.accept(admission.endpoint, {
        method: request.method,
        query: queryStart === -1 ? "" : url.slice(queryStart),
        headers: request.headers,
        body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
      });
      switch (outcome.outcome) {
        case "accepted":
          setRateLimitHeaders(reply, admission.rateLimit);
          return reply.code(202).send({ id: outcome.logId, status: "queued" });
        case "endpoint_not_found":
          throw new AppError("not_found", "No endpoint with this URL.");
        case "quota_exceeded":
          reply.header("retry-after", outcome.retryAfterSeconds);
          return reply
            .code(429)
            .send(errorBody("quota_exceeded", "Monthly request quota exceeded for this account."));
        case "unavailable":
          reply.header("retry-after", 5);
          return reply
            .code(503)
            .send(errorBody("service_unavailable", "Mitte cannot queue webhooks right now; retry shortly."));
        default:
          return outcome satisfies never;
      }
    },
  });

  app.route({
    method: ["GET", "DELETE", "OPTIONS"],
    url: INGEST_URL,
    handler: async (_request, reply) => {
      reply.header("allow", "POST, PUT, PATCH");
      throw new AppError("method_not_allowed", "Send webhooks with POST, PUT or PATCH.");
    },
  });
}
