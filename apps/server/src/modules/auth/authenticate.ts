import type { FastifyRequest } from "fastify";
import { AppError } from "../../errors.js";
import type { ApiKeyService } from "../api-keys/api-key.service.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by `requireUser` on authenticated routes. */
    userId: string;
  }
  interface FastifyContextConfig {
    /** Marks a route as authenticated; the isolation test suite enumerates routes by this flag. */
    authenticated?: boolean;
  }
}

/** onRequest hook for authenticated routes: `Authorization: Bearer mk_…`. */
export function requireUser(apiKeys: ApiKeyService) {
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) throw new AppError("unauthorized", "Send an API key as `Authorization: Bearer mk_…`.");
    const principal = await apiKeys.authenticate(match[1]);
    if (!principal) throw new AppError("unauthorized", "This API key is not valid.");
    request.userId = principal.userId;
  };
}
