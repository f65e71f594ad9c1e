import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { type StandInUser, startOauthStandIn } from "../../test-support/oauth-stand-in.js";

let h: Harness;
let provider: Awaited<ReturnType<typeof startOauthStandIn>>;

const octocat: StandInUser = {
  id: "583231",
  login: "octocat",
  name: "The Octocat",
  email: "octocat@example.com",
  emailVerified: true,
  avatarUrl: "https://avatars.example.com/u/583231",
};

beforeEach(async () => {
  provider = await startOauthStandIn("client-1", "secret-1");
  h = await createHarness({
    env: {
      GITHUB_CLIENT_ID: "client-1",
      GITHUB_CLIENT_SECRET: "secret-1",
      GITHUB_AUTHORIZE_URL: `${provider.base}/login/oauth/authorize`,
      GITHUB_TOKEN_URL: `${provider.base}/login/oauth/access_token`,
      GITHUB_API_URL: provider.base,
      GOOGLE_CLIENT_ID: "client-1",
      GOOGLE_CLIENT_SECRET: "secret-1",
      GOOGLE_AUTHORIZE_URL: `${provider.base}/authorize`,
      GOOGLE_TOKEN_URL: `${provider.base}/token`,
      GOOGLE_USERINFO_URL: `${provider.base}/userinfo`,
    },
  });
});
afterEach(async () => {
  await h.close();
  await provider.close();
});

/** The state cookie each started sign-in left in "its browser", by state. */
const browsers = new Map<string, string>();

async function start(name: "github" | "google") {
  const response = await h.app.inject({ method: "GET", url: `/api/v1/auth/oauth/${name}/start` });
  expect(response.statusCode).toBe(302);
  const location = String(response.headers.location);
  const stateCookie = String(response.headers["set-cookie"]).split(";")[0]!;
  expect(stateCookie).toMatch(/^mitte_oauth_state=/);
  browsers.set(new URL(location).searchParams.get("state")!, stateCookie);
  return location;
}

/** The provider's redirect back, in the browser that started the sign-in (or in another: `cookie`). */
const callback = (
  name: string,
  query: { code: string; state: string },
  cookie: string | undefined = browsers.get(query.state),
) =>
  h.app.inject({
    method: "GET",
    url: `/api/v1/auth/oauth/${name}/callback?${new URLSearchParams(query)}`,
    headers: cookie ? { cookie } : {},
  });

/** The session cookie a response sets (it also clears the state cookie). */
const sessionCookieOf = (response: { headers: Record<string, unknown> }) =>
  [response.headers["set-cookie"]]
    .flat()
    .map((header) => String(header).split(";")[0]!)
    .find((pair) => pair.startsWith("mitte_session="))!;

describe("Sign in with GitHub / Google (arctic, PKCE, single-use state)", () => {
  it("GitHub round trip creates a verified user on a trial and signs in", async () => {
    const authorizeUrl = await start("github");
    const url = new URL(authorizeUrl);
    expect(url.origin + url.pathname).toBe(`${provider.base}/login/oauth/authorize`);
    expect(url.searchParams.get("client_id")).toBe("client-1");
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("redirect_uri")).toBe(
      "http://localhost:3000/api/v1/auth/oauth/github/callback",
    );

    const query = provider.approve(authorizeUrl, octocat);
    const signedIn = await callback("github", query);
    expect(signedIn.statusCode).toBe(302);
    expect(signedIn.headers.location).toBe("/");
    const cookie = sessionCookieOf(signedIn);
    const me = (await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).json();
    expect(me).toMatchObject({
      email: "octocat@example.com",
      name: "The Octocat",
      avatarUrl: octocat.avatarUrl,
      emailVerified: true,
      effectivePlan: "pro",
    });

    // The same callback again (replay) and a state nobody issued are refused.
    const replay = await callback("github", query);
    expect([replay.statusCode, replay.json().error.code]).toEqual([400, "invalid_state"]);
    const forged = await callback("github", { code: query.code, state: "not-a-state-we-issued" });
    expect([forged.statusCode, forged.json().error.code]).toEqual([400, "invalid_state"]);

    // Signing in again finds the same user through the linked identity.
    const again = await callback("github", provider.approve(await start("github"), octocat));
    const meAgain = (
      await h.app.inject({
        method: "GET",
        url: "/api/v1/me",
        headers: { cookie: sessionCookieOf(again) },
      })
    ).json();
    expect(meAgain.id).toBe(me.id);
  });

  it("refuses a callback in a browser that did not start the sign-in (login CSRF)", async () => {
    // An attacker starts a sign-in, approves it with their own account and sends the callback URL to a victim.
    const attackersQuery = provider.approve(await start("github"), octocat);
    const inVictimsBrowser = await callback("github", attackersQuery, "");
    expect([inVictimsBrowser.statusCode, inVictimsBrowser.json().error.code]).toEqual([400, "invalid_state"]);
    expect(sessionCookieOf(inVictimsBrowser)).toBeUndefined();
    // Nor does a cookie from another sign-in the victim started themselves help.
    const victimsOwn = browsers.get(new URL(await start("github")).searchParams.get("state")!)!;
    const mixed = await callback("github", attackersQuery, victimsOwn);
    expect([mixed.statusCode, mixed.json().error.code]).toEqual([400, "invalid_state"]);
    // The attacker's own browser still completes it: the refusals consumed nothing.
    expect((await callback("github", attackersQuery)).statusCode).toBe(302);
  });

  it("refuses a state issued for another provider, and an unconfigured provider", async () => {
    const github = provider.approve(await start("github"), octocat);
    const crossed = await callback("google", github);
    expect([crossed.statusCode, crossed.json().error.code]).toEqual([400, "invalid_state"]);
    const unknown = await h.app.inject({ method: "GET", url: "/api/v1/auth/oauth/gitlab/start" });
    expect(unknown.statusCode).toBe(404);
  });

  it("Google round trip through OIDC userinfo", async () => {
    const signedIn = await callback(
      "google",
      provider.approve(await start("google"), { ...octocat, id: "google-sub-1", email: "ada@example.com" }),
    );
    expect(signedIn.statusCode).toBe(302);
    const cookie = sessionCookieOf(signedIn);
    expect((await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).json().email).toBe(
      "ada@example.com",
    );
  });

  it("links to an existing account only when both sides verified the email", async () => {
    const verified = await h.services.users.createUser({
      email: "linked@example.com",
      emailVerified: true,
      withApiKey: false,
    });
    const unverified = await h.services.users.createUser({
      email: "pending@example.com",
      emailVerified: false,
      withApiKey: false,
    });
    if (verified.outcome !== "created" || unverified.outcome !== "created") throw new Error("setup");

    const linked = await callback(
      "github",
      provider.approve(await start("github"), { ...octocat, id: "1", email: "linked@example.com" }),
    );
    const cookie = sessionCookieOf(linked);
    expect((await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).json().id).toBe(
      verified.user.id,
    );

    const taken = await callback(
      "github",
      provider.approve(await start("github"), { ...octocat, id: "2", email: "pending@example.com" }),
    );
    expect([taken.statusCode, taken.json().error.code]).toEqual([409, "email_taken"]);

    const unconfirmed = await callback(
      "github",
      provider.approve(await start("github"), {
        ...octocat,
        id: "3",
        email: "x@example.com",
        emailVerified: false,
      }),
    );
    expect([unconfirmed.statusCode, unconfirmed.json().error.code]).toEqual([400, "no_verified_email"]);
  });

  it("reports a provider failure (bad code) as 502 without signing in", async () => {
    const { state } = provider.approve(await start("github"), octocat);
    const failed = await callback("github", { code: "made-up-code", state });
    expect([failed.statusCode, failed.json().error.code]).toEqual([502, "oauth_failed"]);
    expect(sessionCookieOf(failed)).toBeUndefined();
  });
});
