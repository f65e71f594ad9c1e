import type { Config } from "../../config.js";

export type OauthProviderId = "github" | "google";

export interface OauthProfile {
  id: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  avatarUrl: string | null;
}

export interface OauthProvider {
  id: OauthProviderId;
  clientId: string;
  clientSecret: string;
  authorizeUrl: string;
  tokenUrl: string;
  scopes: string[];
  fetchProfile(accessToken: string): Promise<OauthProfile>;
}

async function getJson<T>(url: string, accessToken: string): Promise<T> {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${accessToken}`, accept: "application/json", "user-agent": "Mitte" },
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return (await response.json()) as T;
}

/**
 * GitHub and Google through arctic's generic OAuth 2.0 client, with endpoints from configuration so that
 * tests (and GitHub Enterprise) can point them elsewhere.
 */
export function configuredOauthProviders(config: Config["oauth"]): Map<OauthProviderId, OauthProvider> {
  const providers = new Map<OauthProviderId, OauthProvider>();
  const { github, google } = config;
  if (github) {
    providers.set("github", {
      id: "github",
      ...github,
      scopes: ["read:user", "user:email"],
      async fetchProfile(accessToken) {
        const user = await getJson<{
          id: number;
          login: string;
          name: string | null;
          avatar_url: string | null;
        }>(`${github.apiUrl}/user`, accessToken);
        // The profile's public email may be absent or unverified; the emails API says which one is verified.
        const emails = await getJson<{ email: string; primary: boolean; verified: boolean }[]>(
          `${github.apiUrl}/user/emails`,
          accessToken,
        );
        const primary = emails.find((e) => e.primary) ?? emails.find((e) => e.verified) ?? null;
        return {
          id: String(user.id),
          email: primary?.email ?? null,
          emailVerified: primary?.verified ?? false,
          name: user.name ?? user.login,
          avatarUrl: user.avatar_url,
        };
      },
    });
  }
  if (google) {
    providers.set("google", {
      id: "google",
      ...google,
      scopes: ["openid", "email", "profile"],
      async fetchProfile(accessToken) {
        const info = await getJson<{
          sub: string;
          email?: string;
          email_verified?: boolean;
          name?: string;
          picture?: string;
        }>(google.userinfoUrl, accessToken);
        return {
          id: info.sub,
          email: info.email ?? null,
          emailVerified: info.email_verified === true,
          name: info.name ?? null,
          avatarUrl: info.picture ?? null,
        };
      },
    });
  }
  return providers;
}
