import { CodeChallengeMethod, generateCodeVerifier, generateState, OAuth2Client, OAuth2Tokens } from "arctic";
import type { Logger } from "pino";
import type { Clock } from "../../lib/clock.js";
import { sha256Hex } from "../../lib/crypto.js";
import type { Storage } from "../../storage/storage.js";
import { TRIAL_LENGTH_MS } from "../plans/plan-limits.js";
import type { UserService } from "../users/user.service.js";
import type { OauthProvider, OauthProviderId } from "./oauth-providers.js";
import type { SessionService } from "./session.service.js";

/** How long a started sign-in may take; also the lifetime of the cookie that ties it to its browser. */
export const STATE_TTL_MS = 10 * 60 * 1000;

/**
 * The authorization-code exchange (RFC 6749 §4.1.3 with PKCE), done here rather than by arctic's
 * `validateAuthorizationCode`: arctic 3.7 sets Content-Length by hand, which undici ≥ 7.28 (installed as
 * the global fetch dispatcher as soon as undici is imported) refuses. arctic still builds the authorization
 * URL, state and verifier, and parses the token response.
 */
async function exchangeCode(
  provider: OauthProvider,
  code: string,
  codeVerifier: string,
  redirectUri: string,
): Promise<OAuth2Tokens> {
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code,
    redirect_uri: redirectUri,
    code_verifier: codeVerifier,
  });
  const response = await fetch(provider.tokenUrl, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(provider.clientId)}:${encodeURIComponent(provider.clientSecret)}`).toString("base64")}`,
    },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const data = (await response.json().catch(() => null)) as Record<string, unknown> | null;
  if (!response.ok || !data || typeof data.access_token !== "string") {
    throw new Error(
      `token endpoint answered ${response.status}${data && typeof data.error === "string" ? ` (${data.error})` : ""}`,
    );
  }
  return new OAuth2Tokens(data);
}

export type OauthStartOutcome =
  | { outcome: "redirect"; url: string; state: string }
  | { outcome: "unknown_provider" };
export type OauthCallbackOutcome =
  | { outcome: "logged_in"; token: string; userId: string; created: boolean }
  | { outcome: "unknown_provider" }
  | { outcome: "invalid_state" }
  | { outcome: "provider_error"; message: string }
  | { outcome: "no_verified_email" }
  | { outcome: "email_in_use" };

export interface OauthServiceDeps {
  storage: Storage;
  clock: Clock;
  logger: Logger;
  users: UserService;
  sessions: SessionService;
  providers: Map<OauthProviderId, OauthProvider>;
  publicUrl: string;
}

/**
 * "Sign in with GitHub/Google": authorization code flow with PKCE and a single-use state kept (hashed) in
 * the database, so a forged, mismatched or replayed callback is refused in every process.
 */
export function createOauthService({
  storage,
  clock,
  logger,
  users,
  sessions,
  providers,
  publicUrl,
}: OauthServiceDeps) {
  const { db } = storage;
  const redirectUriFor = (provider: OauthProvider) =>
    `${publicUrl}/api/v1/auth/oauth/${provider.id}/callback`;
  const clientFor = (provider: OauthProvider) =>
    new OAuth2Client(provider.clientId, provider.clientSecret, redirectUriFor(provider));

  return {
    providerIds: () => [...providers.keys()],

    async start(providerId: string): Promise<OauthStartOutcome> {
      const provider = providers.get(providerId as OauthProviderId);
      if (!provider) return { outcome: "unknown_provider" };
      const state = generateState();
      const codeVerifier = generateCodeVerifier();
      const now = clock.now();
      await db
        .insertInto("oauth_states")
        .values({
          state_hash: sha256Hex(state),
          provider: provider.id,
          code_verifier: codeVerifier,
          created_at: now,
          expires_at: now + STATE_TTL_MS,
        })
        .execute();
      const url = clientFor(provider).createAuthorizationURLWithPKCE(
        provider.authorizeUrl,
        state,
        CodeChallengeMethod.S256,
        codeVerifier,
        provider.scopes,
      );
      return { outcome: "redirect", url: url.toString(), state };
    },

    async callback(providerId: string, code: string, state: string): Promise<OauthCallbackOutcome> {
      const provider = providers.get(providerId as OauthProviderId);
      if (!provider) return { outcome: "unknown_provider" };
      // Consume the state whatever happens next: it is good for exactly one callback.
      const stored = await db
        .deleteFrom("oauth_states")
        .where("state_hash", "=", sha256Hex(state))
        .returningAll()
        .executeTakeFirst();
      if (!stored || stored.provider !== provider.id || stored.expires_at <= clock.now())
        return { outcome: "invalid_state" };

      let profile: Awaited<ReturnType<OauthProvider["fetchProfile"]>>;
      try {
        const tokens = await exchangeCode(provider, code, stored.code_verifier, redirectUriFor(provider));
        profile = await provider.fetchProfile(tokens.accessToken());
      } catch (error) {
        logger.warn({ err: error, provider: provider.id }, "oauth: code exchange or profile fetch failed");
        return { outcome: "provider_error", message: error instanceof Error ? error.message : String(error) };
      }

      const linked = await db
        .selectFrom("oauth_accounts")
        .select("user_id")
        .where("provider", "=", provider.id)
        .where("provider_user_id", "=", profile.id)
        .executeTakeFirst();
      let userId = linked?.user_id;
      let created = false;
      if (!userId) {
        if (!profile.email || !profile.emailVerified) return { outcome: "no_verified_email" };
        const email = profile.email.toLowerCase();
        const existing = await db
          .selectFrom("users")
          .select(["id", "email_verified_at"])
          .where("email", "=", email)
          .executeTakeFirst();
        if (existing) {
          // Link only when both sides have proven the address; otherwise whoever registered it first
          // (unverified) could have their account taken over, or take over someone else's.
          if (existing.email_verified_at === null) return { outcome: "email_in_use" };
          userId = existing.id;
        } else {
          const result = await users.createUser({
            email,
            ...(profile.name ? { name: profile.name } : {}),
            ...(profile.avatarUrl ? { avatarUrl: profile.avatarUrl } : {}),
            emailVerified: true,
            trialEndsAt: clock.now() + TRIAL_LENGTH_MS,
            withApiKey: false,
          });
          if (result.outcome !== "created") return { outcome: "email_in_use" };
          userId = result.user.id;
          created = true;
        }
        await db
          .insertInto("oauth_accounts")
          .values({
            provider: provider.id,
            provider_user_id: profile.id,
            user_id: userId,
            created_at: clock.now(),
          })
          .execute();
      }
      const session = await sessions.create(userId);
      return { outcome: "logged_in", token: session.token, userId, created };
    },
  };
}

export type OauthService = ReturnType<typeof createOauthService>;
