import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface StandInUser {
  id: string;
  login: string;
  name: string;
  email: string;
  emailVerified: boolean;
  avatarUrl: string;
}

/**
 * A local OAuth 2.0 provider speaking GitHub's and Google's wire formats: token endpoint with client
 * authentication and PKCE (S256) checks, GitHub's /user and /user/emails, Google's OIDC userinfo.
 */
export async function startOauthStandIn(clientId: string, clientSecret: string) {
  const codes = new Map<
    string,
    { user: StandInUser; challenge: string; redirectUri: string; used: boolean }
  >();
  const tokens = new Map<string, StandInUser>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://stand-in");
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      if (
        req.method === "POST" &&
        (url.pathname === "/login/oauth/access_token" || url.pathname === "/token")
      ) {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        const basic = Buffer.from(
          (req.headers.authorization ?? "").replace(/^Basic /, ""),
          "base64",
        ).toString();
        if (basic !== `${clientId}:${clientSecret}`) return json(401, { error: "invalid_client" });
        const grant = codes.get(form.get("code") ?? "");
        if (!grant || grant.used) return json(400, { error: "invalid_grant" });
        grant.used = true;
        const verifier = form.get("code_verifier") ?? "";
        if (createHash("sha256").update(verifier).digest("base64url") !== grant.challenge)
          return json(400, { error: "invalid_grant", error_description: "PKCE" });
        if (form.get("redirect_uri") !== grant.redirectUri)
          return json(400, { error: "invalid_grant", error_description: "redirect_uri" });
        const token = randomBytes(16).toString("hex");
        tokens.set(token, grant.user);
        return json(200, { access_token: token, token_type: "bearer", scope: "read:user,user:email" });
      }
      const user = tokens.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
      if (!user) return json(401, { message: "Bad credentials" });
      if (url.pathname === "/user")
        return json(200, {
          id: Number(user.id),
          login: user.login,
          name: user.name,
          avatar_url: user.avatarUrl,
        });
      if (url.pathname === "/user/emails")
        return json(200, [{ email: user.email, primary: true, verified: user.emailVerified }]);
      if (url.pathname === "/userinfo") {
        return json(200, {
          sub: user.id,
          email: user.email,
          email_verified: user.emailVerified,
          name: user.name,
          picture: user.avatarUrl,
        });
      }
      return json(404, { message: "Not Found" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    /** The user approves the authorization request at `authorizeUrl`; returns the callback query. */
    approve(authorizeUrl: string, user: StandInUser): { code: string; state: string } {
      const url = new URL(authorizeUrl);
      const code = randomBytes(12).toString("hex");
      codes.set(code, {
        user,
        challenge: url.searchParams.get("code_challenge") ?? "",
        redirectUri: url.searchParams.get("redirect_uri") ?? "",
        used: false,
      });
      return { code, state: url.searchParams.get("state") ?? "" };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
