import { createHash } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from "./password.js";

/**
 * `GET /reset-password?token=…`: where the reset mail's link leads. Until the dashboard exists this is the
 * one page Mitte serves: a form that posts the token and the new password to the API. The token stays in
 * the browser (the script reads it from the address; the server never echoes it into the page), the page
 * sends no Referer, is not cached and cannot be framed.
 */
const SCRIPT = `
const form = document.querySelector("form");
const status = document.querySelector("#status");
const token = new URLSearchParams(location.search).get("token") ?? "";
if (!token) { status.textContent = "This link has no reset token; request a new one."; form.hidden = true; }
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  status.textContent = "";
  try {
    const response = await fetch("/api/v1/auth/password-reset/confirm", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token, password: form.password.value }),
    });
    if (response.ok) {
      form.hidden = true;
      status.textContent = "Your password is changed. Every session was signed out; log in with the new one.";
      return;
    }
    const body = await response.json().catch(() => null);
    status.textContent = body?.error?.message ?? "The password could not be changed (HTTP " + response.status + ").";
  } catch {
    status.textContent = "Mitte could not be reached; try again.";
  }
  button.disabled = false;
});
`;

const SCRIPT_HASH = createHash("sha256").update(SCRIPT).digest("base64");

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reset your Mitte password</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 26rem; margin: 4rem auto; padding: 0 1rem; }
label, input, button { display: block; width: 100%; box-sizing: border-box; }
input { margin: .25rem 0 1rem; padding: .5rem; font: inherit; }
button { padding: .5rem; font: inherit; }
</style>
</head>
<body>
<h1>Reset your password</h1>
<form>
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="${PASSWORD_MIN_LENGTH}" maxlength="${PASSWORD_MAX_LENGTH}">
<button type="submit">Change password</button>
</form>
<p id="status" role="status" aria-live="polite"></p>
<script>${SCRIPT}</script>
</body>
</html>
`;

export async function resetPasswordPage(app: FastifyInstance): Promise<void> {
  app.get("/reset-password", async (_request, reply) =>
    reply
      .header("content-type", "text/html; charset=utf-8")
      .header(
        "content-security-policy",
        `default-src 'none'; script-src 'sha256-${SCRIPT_HASH}'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`,
      )
      .header("referrer-policy", "no-referrer")
      .header("cache-control", "no-store")
      .header("x-frame-options", "DENY")
      .header("x-content-type-options", "nosniff")
      .send(PAGE),
  );
}
