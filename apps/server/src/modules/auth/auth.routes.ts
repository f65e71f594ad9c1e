import {
  loginBody,
  passwordResetBody,
  passwordResetConfirmBody,
  signupBody,
  tokenBody,
} from "@mitte/contract";
import type { FastifyInstance, FastifyReply } from "fastify";
import { AppError } from "../../errors.js";
import { toMeView } from "../users/user.service.js";
import type { AccountService, TokenOutcome } from "./account.service.js";
import { assertSameOrigin, sessionToken } from "./authenticate.js";
import { type SessionService, sessionCookie } from "./session.service.js";

export interface AuthRoutesOptions {
  accounts: AccountService;
  sessions: SessionService;
  /** Secure cookies when Mitte is served over HTTPS. */
  secureCookies: boolean;
  nowMs: () => number;
  /** Origins whose pages may end a cookie session (CSRF; see requireUser). */
  trustedOrigins: readonly string[];
}

function tokenResult(outcome: TokenOutcome): void {
  switch (outcome.outcome) {
    case "ok":
      return;
    case "invalid":
      throw new AppError("invalid_token", "This link is not valid or was already used.");
    case "expired":
      throw new AppError("token_expired", "This link has expired; ask for a new one.");
    case "weak_password":
      throw new AppError("weak_password", outcome.reason);
    default:
      outcome satisfies never;
  }
}

/** Public account routes: sign-up, email verification, login, logout, password reset. */
export async function authRoutes(
  app: FastifyInstance,
  { accounts, sessions, secureCookies, nowMs, trustedOrigins }: AuthRoutesOptions,
): Promise<void> {
  const setSessionCookie = (reply: FastifyReply, token: string, maxAgeSeconds: number) =>
    reply.header("set-cookie", sessionCookie(token, maxAgeSeconds, secureCookies));

  app.post("/api/v1/auth/signup", async (request, reply) => {
    const result = await accounts.signup(signupBody.parse(request.body));
    switch (result.outcome) {
      case "created":
        return reply.code(201).send({ ...toMeView(result.user, nowMs()), verificationSent: true });
      case "email_taken":
        throw new AppError("email_taken", "An account with this email exists; log in or reset the password.");
      case "weak_password":
        throw new AppError("weak_password", result.reason);
      default:
        return result satisfies never;
    }
  });

  // GET so the link in the mail works when clicked; POST for API clients.
  app.get<{ Querystring: { token?: string } }>("/api/v1/auth/verify-email", async (request) => {
    tokenResult(await accounts.verifyEmail(tokenBody.parse({ token: request.query.token ?? "" }).token));
    return { verified: true };
  });
  app.post("/api/v1/auth/verify-email", async (request) => {
    tokenResult(await accounts.verifyEmail(tokenBody.parse(request.body).token));
    return { verified: true };
  });

  app.post("/api/v1/auth/login", async (request, reply) => {
    const body = loginBody.parse(request.body);
    const result = await accounts.login({ ...body, clientIp: request.ip });
    switch (result.outcome) {
      case "logged_in":
        setSessionCookie(reply, result.token, Math.floor(sessions.ttlMs / 1000));
        return toMeView(result.user, nowMs());
      case "invalid_credentials":
        throw new AppError("invalid_credentials", "Wrong email or password.");
      case "email_not_verified":
        throw new AppError("email_not_verified", "Confirm your email first; we sent a new link.");
      case "throttled":
        reply.header("retry-after", result.retryAfterSeconds);
        throw new AppError("too_many_attempts", "Too many login attempts; try again later.");
      default:
        return result satisfies never;
    }
  });

  app.post("/api/v1/auth/logout", async (request, reply) => {
    const token = sessionToken(request);
    // Another site must not be able to log a visitor out.
    if (token) {
      assertSameOrigin(request, trustedOrigins);
      await sessions.revoke(token);
    }
    setSessionCookie(reply, "", 0);
    return reply.code(204).send();
  });

  app.post("/api/v1/auth/password-reset", async (request, reply) => {
    await accounts.requestPasswordReset(passwordResetBody.parse(request.body).email);
    return reply.code(202).send({ sent: true });
  });

  app.post("/api/v1/auth/password-reset/confirm", async (request) => {
    const body = passwordResetConfirmBody.parse(request.body);
    tokenResult(await accounts.resetPassword(body.token, body.password));
    return { reset: true };
  });
}
