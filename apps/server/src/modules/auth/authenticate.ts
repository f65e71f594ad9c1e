import { parse as parseCookies } from "cookie";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors.js";
import type { ApiKeyService } from "../api-keys/api-key.service.js";
import { SESSION_COOKIE, type SessionService, sessionCookie } from "./session.service.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by `requireUser` on authenticated routes. */
    userId: string;
    authMethod: "api_key" | "session";
  }
  interface FastifyContextConfig {
    /** Marks a route as authenticated; the isolation test suite enumerates routes by this flag. */
    authenticated?: boolean;
  }
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function sessionToken(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  return header ? parseCookies(header)[SESSION_COOKIE] : undefined;
}

/** A cookie-authenticated change must come from Mitte's own pages: its Origin (or Referer) says so. */
export function assertSameOrigin(request: FastifyRequest, trustedOrigins: readonly string[]): void {
  const origin = request.headers.origin ?? request.headers.referer;
  const host = request.headers.host;
  const allowed = [...trustedOrigins, ...(host ? [`http://${host}`, `https://${host}`] : [])];
  if (!origin || !allowed.some((trusted) => origin === trusted || origin.startsWith(`${trusted}/`))) {
    throw new AppError("csrf_failed", "This change must come from Mitte's own pages (Origin check failed).");
  }
}

/**
 * onRequest hook for authenticated routes: `Authorization: Bearer mk_…` (API clients, MCP) or the
 * dashboard's session cookie. Cookie-authenticated changes must come from our own origin (CSRF): browsers
 * send Origin on every cross-site POST/PUT/PATCH/DELETE, and SameSite=Lax keeps the cookie off most of them.
 */
export function requireUser(
  apiKeys: ApiKeyService,
  sessions: SessionService,
  trustedOrigins: readonly string[],
  options: { secureCookies: boolean; nowMs: () => number },
) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    if (header) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const principal = match?.[1] ? await apiKeys.authenticate(match[1]) : null;
      if (!principal) throw new AppError("unauthorized", "This API key is not valid.");
      request.userId = principal.userId;
      request.authMethod = "api_key";
      return;
    }
    const token = sessionToken(request);
    const session = token ? await sessions.authenticate(token) : null;
    if (!session)
      throw new AppError("unauthorized", "Log in, or send an API key as `Authorization: Bearer mk_…`.");
    if (!SAFE_METHODS.has(request.method)) assertSameOrigin(request, trustedOrigins);
    // The server extended the session; the browser's cookie must last as long, or it drops a live session.
    if (session.renewedUntil !== null && token) {
      const maxAgeSeconds = Math.floor((session.renewedUntil - options.nowMs()) / 1000);
      reply.header("set-cookie", sessionCookie(token, maxAgeSeconds, options.secureCookies));
    }
    request.userId = session.userId;
    request.authMethod = "session";
  };
}
