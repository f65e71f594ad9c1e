import { parse, serialize } from "cookie";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { AppError } from "../../errors.js";
import { constantTimeEqual } from "../../lib/crypto.js";
import { type OauthService, STATE_TTL_MS } from "./oauth.service.js";
import { sessionCookie } from "./session.service.js";

/**
 * Holds the state of the sign-in this browser started. The callback must come with it: otherwise anyone could
 * send a victim their own half-finished callback URL and sign the victim into the attacker's account.
 */
const STATE_COOKIE = "mitte_oauth_state";
const OAUTH_PATH = "/api/v1/auth/oauth";

const callbackQuery = z.object({ code: z.string().min(1).max(2000), state: z.string().min(1).max(200) });

export interface OauthRoutesOptions {
  oauth: OauthService;
  secureCookies: boolean;
  sessionTtlMs: number;
}

/** `/api/v1/auth/oauth/:provider/start` redirects to the provider; its callback signs in and redirects home. */
export async function oauthRoutes(
  app: FastifyInstance,
  { oauth, secureCookies, sessionTtlMs }: OauthRoutesOptions,
): Promise<void> {
  app.get<{ Params: { provider: string } }>("/api/v1/auth/oauth/:provider/start", async (request, reply) => {
    const result = await oauth.start(request.params.provider);
    if (result.outcome === "unknown_provider")
      throw new AppError("not_found", `Sign-in with ${request.params.provider} is not configured.`);
    reply.header(
      "set-cookie",
      serialize(STATE_COOKIE, result.state, {
        httpOnly: true,
        secure: secureCookies,
        // Lax: sent on the provider's top-level redirect back to the callback.
        sameSite: "lax",
        path: OAUTH_PATH,
        maxAge: Math.floor(STATE_TTL_MS / 1000),
      }),
    );
    return reply.redirect(result.url, 302);
  });

  app.get<{ Params: { provider: string }; Querystring: Record<string, string> }>(
    "/api/v1/auth/oauth/:provider/callback",
    async (request, reply) => {
      if (request.query.error)
        throw new AppError("oauth_failed", `The provider refused: ${request.query.error}`);
      const { code, state } = callbackQuery.parse(request.query);
      const startedHere = parse(request.headers.cookie ?? "")[STATE_COOKIE];
      // Whatever the outcome, this browser's attempt is over.
      reply.header(
        "set-cookie",
        serialize(STATE_COOKIE, "", { httpOnly: true, secure: secureCookies, path: OAUTH_PATH, maxAge: 0 }),
      );
      const result =
        startedHere !== undefined && constantTimeEqual(startedHere, state)
          ? await oauth.callback(request.params.provider, code, state)
          : ({ outcome: "invalid_state" } as const);
      switch (result.outcome) {
        case "logged_in":
          reply.header(
            "set-cookie",
            sessionCookie(result.token, Math.floor(sessionTtlMs / 1000), secureCookies),
          );
          return reply.redirect("/", 302);
        case "unknown_provider":
          throw new AppError("not_found", `Sign-in with ${request.params.provider} is not configured.`);
        case "invalid_state":
          throw new AppError(
            "invalid_state",
            "This sign-in attempt is unknown, expired or already used; start again.",
          );
        case "provider_error":
          throw new AppError("oauth_failed", "The sign-in provider did not complete the sign-in; try again.");
        case "no_verified_email":
          throw new AppError(
            "no_verified_email",
            "The provider did not confirm an email address for this account.",
          );
        case "email_in_use":
          throw new AppError(
            "email_taken",
            "An account with this email exists but is not verified; log in with its password first.",
          );
        default:
          return result satisfies never;
      }
    },
  );
}
