import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { startResendStandIn } from "../../test-support/resend-stand-in.js";

type StandIn = Awaited<ReturnType<typeof startResendStandIn>>;
let h: Harness;
let resend: StandIn;
const ORIGIN = "http://localhost:3000";
const PASSWORD = "correct horse battery";

beforeEach(async () => {
  resend = await startResendStandIn();
  h = await createHarness({ env: { RESEND_API_KEY: "re_test_key", RESEND_BASE_URL: resend.url } });
});
afterEach(async () => {
  await h.close();
  await resend.close();
});

const post = (url: string, payload?: object, headers: Record<string, string> = {}) =>
  h.app.inject({ method: "POST", url, headers, ...(payload ? { payload } : {}) });
const cookieOf = (response: { headers: Record<string, unknown> }) =>
  String(response.headers["set-cookie"]).split(";")[0]!;
const pathOf = (link: string) => new URL(link).pathname + new URL(link).search;

async function signUpAndVerify(email: string) {
  expect((await post("/api/v1/auth/signup", { email, password: PASSWORD, name: "Ada" })).statusCode).toBe(
    201,
  );
  expect((await h.app.inject({ method: "GET", url: pathOf(resend.lastLink(email)) })).statusCode).toBe(200);
}

async function login(email: string, password = PASSWORD) {
  return post("/api/v1/auth/login", { email, password });
}

describe("sign-up, verification, login, session", () => {
  it("walks the whole flow over HTTP with mail through the Resend client", async () => {
    const signup = await post("/api/v1/auth/signup", {
      email: "Ada@Example.com",
      password: PASSWORD,
      name: "Ada",
    });
    expect(signup.statusCode).toBe(201);
    expect(signup.json()).toMatchObject({
      email: "ada@example.com",
      emailVerified: false,
      effectivePlan: "pro",
      verificationSent: true,
    });
    expect(Date.parse(signup.json().trialEndsAt) - h.clock.now()).toBe(14 * 24 * 60 * 60 * 1000);
    expect(resend.sent).toHaveLength(1);
    expect(resend.sent[0]).toMatchObject({
      to: "ada@example.com",
      subject: "Confirm your email for Mitte",
      authorization: "Bearer re_test_key",
    });

    const early = await login("ada@example.com");
    expect(early.statusCode).toBe(403);
    expect(early.json().error.code).toBe("email_not_verified");

    const link = resend.lastLink("ada@example.com");
    const verified = await h.app.inject({ method: "GET", url: pathOf(link) });
    expect(verified.statusCode).toBe(200);
    const reused = await h.app.inject({ method: "GET", url: pathOf(link) });
    expect(reused.statusCode).toBe(400);
    expect(reused.json().error.code).toBe("invalid_token");

    const loggedIn = await login("ada@example.com");
    expect(loggedIn.statusCode).toBe(200);
    const setCookie = String(loggedIn.headers["set-cookie"]);
    expect(setCookie).toMatch(/^mitte_session=[A-Za-z0-9_-]{43};/);
    expect(setCookie).toContain("HttpOnly");
    expect(setCookie).toContain("SameSite=Lax");
    const cookie = cookieOf(loggedIn);

    const me = await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } });
    expect(me.json()).toMatchObject({
      email: "ada@example.com",
      name: "Ada",
      emailVerified: true,
      effectivePlan: "pro",
    });

    // Cookie-authenticated changes need our Origin (CSRF); the same request from our page works.
    const endpoint = { name: "stripe-prod", targetUrl: "https://example.com/hooks" };
    const forged = await post("/api/v1/endpoints", endpoint, { cookie, origin: "https://evil.example" });
    expect(forged.statusCode).toBe(403);
    expect(forged.json().error.code).toBe("csrf_failed");
    expect((await post("/api/v1/endpoints", endpoint, { cookie })).statusCode).toBe(403);
    const created = await post("/api/v1/endpoints", endpoint, { cookie, origin: ORIGIN });
    expect(created.statusCode).toBe(201);

    // Another site cannot log the visitor out either.
    const forgedLogout = await post("/api/v1/auth/logout", undefined, {
      cookie,
      origin: "https://evil.example",
    });
    expect([forgedLogout.statusCode, forgedLogout.json().error.code]).toEqual([403, "csrf_failed"]);
    expect((await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).statusCode).toBe(
      200,
    );
    const logout = await post("/api/v1/auth/logout", undefined, { cookie, origin: ORIGIN });
    expect(logout.statusCode).toBe(204);
    expect(String(logout.headers["set-cookie"])).toContain("Max-Age=0");
    expect((await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).statusCode).toBe(
      401,
    );
  });

  it("logs out everywhere", async () => {
    await signUpAndVerify("bob@example.com");
    const a = cookieOf(await login("bob@example.com"));
    const b = cookieOf(await login("bob@example.com"));
    expect((await post("/api/v1/auth/logout-all", undefined, { cookie: a, origin: ORIGIN })).statusCode).toBe(
      204,
    );
    expect(
      (await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie: b } })).statusCode,
    ).toBe(401);
  });

  it("expires sessions, renewing them while used", async () => {
    await signUpAndVerify("eve@example.com");
    const cookie = cookieOf(await login("eve@example.com"));
    const day = 24 * 60 * 60 * 1000;
    h.clock.advance(29 * day);
    const renewed = await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } });
    expect(renewed.statusCode).toBe(200);
    // The browser's cookie is renewed with the session, or the browser would drop it on day 30.
    const renewedCookie = String(renewed.headers["set-cookie"]);
    expect(renewedCookie).toContain(`${cookie};`);
    expect(renewedCookie).toMatch(/Max-Age=2592000;.*HttpOnly.*SameSite=Lax/);
    const quiet = await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } });
    expect(quiet.headers["set-cookie"]).toBeUndefined(); // renewed at most once an hour
    h.clock.advance(29 * day); // 58 days after login, but 29 after last use
    expect((await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).statusCode).toBe(
      200,
    );
    h.clock.advance(31 * day);
    expect((await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).statusCode).toBe(
      401,
    );
  });
});

describe("bad input and abuse", () => {
  it("refuses duplicate email, weak passwords, wrong passwords and malformed bodies with clear errors", async () => {
    await signUpAndVerify("ann@example.com");
    const duplicate = await post("/api/v1/auth/signup", { email: "ANN@example.com", password: PASSWORD });
    expect([duplicate.statusCode, duplicate.json().error.code]).toEqual([409, "email_taken"]);
    for (const password of ["short", "aaaaaaaaaaaaaa", "new@example.com"]) {
      const weak = await post("/api/v1/auth/signup", { email: "new@example.com", password });
      expect([weak.statusCode, weak.json().error.code], password).toEqual([400, "weak_password"]);
    }
    const wrong = await login("ann@example.com", "not the password");
    expect([wrong.statusCode, wrong.json().error.code]).toEqual([401, "invalid_credentials"]);
    const unknown = await login("nobody@example.com", "whatever12345");
    expect([unknown.statusCode, unknown.json().error.code]).toEqual([401, "invalid_credentials"]);
    const malformed = await post("/api/v1/auth/signup", { email: "not-an-email", password: PASSWORD });
    expect([malformed.statusCode, malformed.json().error.code]).toEqual([400, "validation_failed"]);
    const unknownToken = await post("/api/v1/auth/verify-email", { token: "x".repeat(43) });
    expect([unknownToken.statusCode, unknownToken.json().error.code]).toEqual([400, "invalid_token"]);
  });

  it("throttles repeated login attempts with 429 and Retry-After", async () => {
    await signUpAndVerify("tom@example.com");
    for (let i = 0; i < 10; i++)
      expect((await login("tom@example.com", `wrong-${i}-password`)).statusCode).toBe(401);
    const throttled = await login("tom@example.com");
    expect(throttled.statusCode).toBe(429);
    expect(throttled.json().error.code).toBe("too_many_attempts");
    expect(Number(throttled.headers["retry-after"])).toBeGreaterThan(0);
    // 10 attempts per sliding 15-minute window: once the failures have slid out, login works again.
    h.clock.advance(31 * 60 * 1000);
    expect((await login("tom@example.com")).statusCode).toBe(200);
  });
});

describe("password reset", () => {
  it("sends at most 5 reset mails an hour to one address, answering every request the same", async () => {
    await signUpAndVerify("flood@example.com");
    const mailsTo = (to: string) => resend.sent.filter((mail) => [mail.to].flat().includes(to)).length;
    const before = mailsTo("flood@example.com");
    for (let i = 0; i < 8; i++) {
      const answer = await post("/api/v1/auth/password-reset", { email: "flood@example.com" });
      expect([answer.statusCode, answer.json()]).toEqual([202, { sent: true }]);
    }
    expect(mailsTo("flood@example.com") - before).toBe(5);
    // A sliding one-hour window: once the requests have slid out of it, mail goes out again.
    h.clock.advance(121 * 60 * 1000);
    await post("/api/v1/auth/password-reset", { email: "flood@example.com" });
    expect(mailsTo("flood@example.com") - before).toBe(6);
  });

  it("the mail's link opens a page that can complete the reset, with the token kept out of it", async () => {
    await signUpAndVerify("page@example.com");
    await post("/api/v1/auth/password-reset", { email: "page@example.com" });
    const link = new URL(resend.lastLink("page@example.com"));
    expect(link.pathname).toBe("/reset-password");
    const page = await h.app.inject({ method: "GET", url: `${link.pathname}${link.search}` });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["referrer-policy"]).toBe("no-referrer");
    expect(page.headers["cache-control"]).toBe("no-store");
    // The server never writes the token into the page; the script reads it from the address.
    expect(page.body).not.toContain(link.searchParams.get("token")!);
    expect(page.body).toContain('fetch("/api/v1/auth/password-reset/confirm"');
    // The only script runs under the CSP because its hash is the one the policy names.
    const script = /<script>([\s\S]*)<\/script>/.exec(page.body)![1]!;
    const hash = createHash("sha256").update(script).digest("base64");
    expect(page.headers["content-security-policy"]).toContain(`script-src 'sha256-${hash}'`);
    expect(page.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
  });

  it("works once, ends sessions, and refuses an expired link", async () => {
    await signUpAndVerify("kim@example.com");
    const cookie = cookieOf(await login("kim@example.com"));
    expect((await post("/api/v1/auth/password-reset", { email: "kim@example.com" })).statusCode).toBe(202);
    const older = new URL(resend.lastLink("kim@example.com")).searchParams.get("token")!;
    expect((await post("/api/v1/auth/password-reset", { email: "kim@example.com" })).statusCode).toBe(202);
    expect((await post("/api/v1/auth/password-reset", { email: "ghost@example.com" })).statusCode).toBe(202);
    const token = new URL(resend.lastLink("kim@example.com")).searchParams.get("token")!;
    expect(token).not.toBe(older);

    const weak = await post("/api/v1/auth/password-reset/confirm", { token, password: "short" });
    expect(weak.json().error.code).toBe("weak_password");
    const done = await post("/api/v1/auth/password-reset/confirm", {
      token,
      password: "a brand new passphrase",
    });
    expect(done.statusCode).toBe(200);
    const again = await post("/api/v1/auth/password-reset/confirm", {
      token,
      password: "another new passphrase",
    });
    expect([again.statusCode, again.json().error.code]).toEqual([400, "invalid_token"]);
    // The older link, still unused, died with the reset: reading an old mail no longer takes the account back.
    const fromOlderMail = await post("/api/v1/auth/password-reset/confirm", {
      token: older,
      password: "an attacker's passphrase",
    });
    expect([fromOlderMail.statusCode, fromOlderMail.json().error.code]).toEqual([400, "invalid_token"]);
    expect((await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).statusCode).toBe(
      401,
    );
    expect((await login("kim@example.com")).statusCode).toBe(401);
    expect((await login("kim@example.com", "a brand new passphrase")).statusCode).toBe(200);

    await post("/api/v1/auth/password-reset", { email: "kim@example.com" });
    const late = new URL(resend.lastLink("kim@example.com")).searchParams.get("token")!;
    h.clock.advance(61 * 60 * 1000);
    const expired = await post("/api/v1/auth/password-reset/confirm", {
      token: late,
      password: "yet another passphrase",
    });
    expect([expired.statusCode, expired.json().error.code]).toEqual([400, "token_expired"]);
  });
});

describe("data rights and secrets at rest", () => {
  it("stores no plaintext password, session token or API key; exports everything else; deletes everything", async () => {
    await signUpAndVerify("liz@example.com");
    const cookie = cookieOf(await login("liz@example.com"));
    const sessionToken = cookie.split("=")[1]!;
    const key = (await post("/api/v1/api-keys", { name: "ci" }, { cookie, origin: ORIGIN })).json();
    expect(key.key).toMatch(/^mk_[A-Za-z0-9]{49}$/);
    const endpoint = (
      await post(
        "/api/v1/endpoints",
        { name: "e", targetUrl: "http://127.0.0.1:9/" },
        { authorization: `Bearer ${key.key}` },
      )
    ).json();
    expect((await post(`/api/v1/h/${endpoint.slug}`, { order: 42 })).statusCode).toBe(202);
    await h.services.ingest.flush();
    const me = (await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).json();
    await h.services.notifications.notify({
      userId: me.id,
      type: "QUOTA_WARNING",
      title: "80% of this month's requests used",
      message: "4,000 of 5,000",
    });
    const prefs = await h.app.inject({
      method: "PUT",
      url: "/api/v1/notification-preferences",
      headers: { authorization: `Bearer ${key.key}` },
      payload: { emailEnabled: false, webhookEnabled: true, webhookUrl: "https://example.com/notify" },
    });
    expect(prefs.statusCode).toBe(200);

    // Scan every text and blob column of every table for the secrets.
    const tables = [
      "users",
      "sessions",
      "api_keys",
      "one_time_tokens",
      "endpoints",
      "webhook_logs",
      "mail_outbox",
    ] as const;
    const everything: string[] = [];
    for (const table of tables) {
      const rows = await h.db.selectFrom(table).selectAll().execute();
      for (const row of rows)
        for (const value of Object.values(row))
          everything.push(Buffer.isBuffer(value) ? value.toString("latin1") : String(value));
    }
    const dump = everything.join("\n");
    for (const secret of [PASSWORD, sessionToken, key.key, endpoint.signingSecret])
      expect(dump).not.toContain(secret);

    const exported = await h.app.inject({ method: "GET", url: "/api/v1/me/export", headers: { cookie } });
    expect(exported.statusCode).toBe(200);
    expect(exported.headers["content-disposition"]).toMatch(/^attachment; filename="mitte-export-/);
    const data = exported.json();
    expect(data.account.email).toBe("liz@example.com");
    expect(data.endpoints.map((e: { slug: string }) => e.slug)).toEqual([endpoint.slug]);
    expect(data.webhookLogs[0].requestBody.data).toBe('{"order":42}');
    expect(data.apiKeys.map((k: { hint: string }) => k.hint)).toContain(key.key.slice(-8));
    expect(data.notifications).toEqual([
      expect.objectContaining({
        type: "QUOTA_WARNING",
        title: "80% of this month's requests used",
        read: false,
      }),
    ]);
    expect(data.notificationPreferences).toEqual({
      emailEnabled: false,
      webhookEnabled: true,
      webhookUrl: "https://example.com/notify",
    });
    expect(exported.body).not.toMatch(/argon2|password_hash|key_hash|token_hash|whsec_/);

    const deleted = await h.app.inject({
      method: "DELETE",
      url: "/api/v1/me",
      headers: { cookie, origin: ORIGIN },
    });
    expect(deleted.statusCode).toBe(204);
    expect((await h.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } })).statusCode).toBe(
      401,
    );
    expect(
      (
        await h.app.inject({
          method: "GET",
          url: "/api/v1/endpoints",
          headers: { authorization: `Bearer ${key.key}` },
        })
      ).statusCode,
    ).toBe(401);
    h.clock.advance(10_000); // past the endpoint cache TTL in other processes; this one was invalidated at once
    expect((await post(`/api/v1/h/${endpoint.slug}`, {})).statusCode).toBe(404);
    for (const table of tables) {
      const left = await h.db.selectFrom(table).selectAll().execute();
      expect(
        left.filter(
          (row) =>
            JSON.stringify(row).includes("liz@example.com") ||
            ("user_id" in row && row.user_id === data.account.id),
        ),
        table,
      ).toEqual([]);
    }
  });

  it("account deletion also removes the dev outbox's mail to the user, and their logs in batches", async () => {
    const user = await h.createUser("pro", "gone@example.com");
    const endpoint = await h.createEndpoint(user.headers, { name: "e", targetUrl: "https://example.com/" });
    for (let i = 0; i < 3; i += 1)
      expect((await post(`/api/v1/h/${endpoint.slug}`, { i })).statusCode).toBe(202);
    await h.services.ingest.flush();
    const mail = (id: string, to: string) => ({
      id,
      to_address: to,
      subject: "Confirm your email",
      text_body: "Open the link",
      links: "[]",
      created_at: h.clock.now(),
    });
    await h.db
      .insertInto("mail_outbox")
      .values([mail("mail_gone", "gone@example.com"), mail("mail_other", "other@example.com")])
      .execute();
    await h.services.users.deleteAccount(user.userId);
    expect((await h.db.selectFrom("mail_outbox").select("id").execute()).map((r) => r.id)).toEqual([
      "mail_other",
    ]);
    expect(await h.db.selectFrom("webhook_logs").select("id").execute()).toEqual([]);
    expect(await h.db.selectFrom("users").select("id").where("id", "=", user.userId).execute()).toEqual([]);
  });
});
