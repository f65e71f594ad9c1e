import { sql } from "kysely";
import type { Clock } from "../../lib/clock.js";
import { sha256Hex } from "../../lib/crypto.js";
import type { Mailer } from "../../lib/mailer.js";
import type { UserRow } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import type { RateLimiter } from "../ingest/rate-limiter.js";
import { TRIAL_LENGTH_MS } from "../plans/plan-limits.js";
import type { UserService } from "../users/user.service.js";
import type { OneTimeTokens } from "./one-time-tokens.js";
import { hashPassword, passwordProblem, verifyAgainstDummy, verifyPassword } from "./password.js";
import type { SessionService } from "./session.service.js";

const VERIFY_EMAIL_TTL_MS = 48 * 60 * 60 * 1000;
const PASSWORD_RESET_TTL_MS = 60 * 60 * 1000;

export interface AccountServiceDeps {
  storage: Storage;
  clock: Clock;
  users: UserService;
  sessions: SessionService;
  tokens: OneTimeTokens;
  mailer: Mailer;
  /** Base URL for links in mail. */
  publicUrl: string;
  /** Login attempts per account and per client IP (15-minute windows, 15-minute block). */
  loginLimiterByAccount: RateLimiter;
  loginLimiterByIp: RateLimiter;
  /** Password-reset mails per address: past it, requests are answered as usual but send nothing. */
  resetMailLimiter: RateLimiter;
}

export type SignupOutcome =
  | { outcome: "created"; user: UserRow }
  | { outcome: "email_taken" }
  | { outcome: "weak_password"; reason: string };
export type LoginOutcome =
  | { outcome: "logged_in"; user: UserRow; token: string; expiresAt: number }
  | { outcome: "invalid_credentials" }
  | { outcome: "email_not_verified" }
  | { outcome: "throttled"; retryAfterSeconds: number };
export type TokenOutcome =
  | { outcome: "ok" }
  | { outcome: "invalid" }
  | { outcome: "expired" }
  | { outcome: "weak_password"; reason: string };

/** Email + password accounts: sign-up with a verification mail, login with throttling, password reset. */
export function createAccountService(deps: AccountServiceDeps) {
  const { storage, clock, users, sessions, tokens, mailer, publicUrl } = deps;
  const { db } = storage;

  async function sendVerification(user: UserRow): Promise<void> {
    const token = await tokens.issue(user.id, "verify_email", VERIFY_EMAIL_TTL_MS);
    const link = `${publicUrl}/api/v1/auth/verify-email?token=${token}`;
    await mailer.send({
      to: user.email,
      subject: "Confirm your email for Mitte",
      text: `Welcome to Mitte!\n\nConfirm your email address within 48 hours:\n${link}\n\nIf you did not sign up, ignore this mail.`,
      links: [link],
    });
  }

  return {
    async signup(input: {
      email: string;
      password: string;
      name?: string | undefined;
    }): Promise<SignupOutcome> {
      const problem = passwordProblem(input.password, input.email);
      if (problem) return { outcome: "weak_password", reason: problem };
      const passwordHash = await hashPassword(input.password);
      const created = await users.createUser({
        email: input.email,
        ...(input.name ? { name: input.name } : {}),
        passwordHash,
        emailVerified: false,
        // Every new account starts a 14-day Pro trial, then falls back to Free unless subscribed.
        trialEndsAt: clock.now() + TRIAL_LENGTH_MS,
        withApiKey: false,
      });
      if (created.outcome === "email_taken") return { outcome: "email_taken" };
      await sendVerification(created.user);
      return { outcome: "created", user: created.user };
    },

    async verifyEmail(token: string): Promise<TokenOutcome> {
      const consumed = await tokens.consume(token, "verify_email");
      if (consumed.outcome !== "ok") return consumed;
      await db
        .updateTable("users")
        .set({ email_verified_at: clock.now(), updated_at: clock.now() })
        .where("id", "=", consumed.userId)
        .execute();
      return { outcome: "ok" };
    },

    async login(input: { email: string; password: string; clientIp: string }): Promise<LoginOutcome> {
      const email = input.email.trim().toLowerCase();
      const now = clock.now();
      const [byAccount, byIp] = await Promise.all([
        deps.loginLimiterByAccount.hit(email, now),
        deps.loginLimiterByIp.hit(input.clientIp, now),
      ]);
      const refused = [byAccount, byIp].find((decision) => !decision.allowed);
      if (refused) return { outcome: "throttled", retryAfterSeconds: refused.retryAfterSeconds ?? 900 };
      const user = await db.selectFrom("users").selectAll().where("email", "=", email).executeTakeFirst();
      const valid = user?.password_hash
        ? await verifyPassword(user.password_hash, input.password)
        : await verifyAgainstDummy(input.password);
      if (!user || !valid) return { outcome: "invalid_credentials" };
      if (user.email_verified_at === null) {
        await sendVerification(user);
        return { outcome: "email_not_verified" };
      }
      const session = await sessions.create(user.id);
      return { outcome: "logged_in", user, token: session.token, expiresAt: session.expiresAt };
    },

    /** Always "sent" to the caller, whether or not the email has an account (no account enumeration). */
    async requestPasswordReset(email: string): Promise<void> {
      const user = await db
        .selectFrom("users")
        .selectAll()
        .where("email", "=", email.trim().toLowerCase())
        .executeTakeFirst();
      if (!user) return;
      // Anyone can ask for any address: without a bound, this route would flood a mailbox on request.
      if (!(await deps.resetMailLimiter.hit(user.email, clock.now())).allowed) return;
      const token = await tokens.issue(user.id, "password_reset", PASSWORD_RESET_TTL_MS);
      const link = `${publicUrl}/reset-password?token=${token}`;
      await mailer.send({
        to: user.email,
        subject: "Reset your Mitte password",
        text: `Someone asked to reset the password of your Mitte account.\n\nChoose a new password within 1 hour:\n${link}\n\nThe token for the API (POST /api/v1/auth/password-reset/confirm) is: ${token}\n\nIf it was not you, ignore this mail.`,
        links: [link],
      });
    },

    /**
     * Sets the new password, confirms the email (the link proved it), ends every session and voids the other
     * reset links still in the mailbox, which would otherwise let whoever reads an older mail take the account back.
     */
    async resetPassword(token: string, password: string): Promise<TokenOutcome> {
      // Judge the password before spending the token, so a weak choice can be corrected with the same link.
      const owner = await db
        .selectFrom("one_time_tokens")
        .innerJoin("users", "users.id", "one_time_tokens.user_id")
        .select("users.email")
        .where("one_time_tokens.token_hash", "=", sha256Hex(token))
        .executeTakeFirst();
      const problem = passwordProblem(password, owner?.email ?? "");
      if (problem) return { outcome: "weak_password", reason: problem };
      const consumed = await tokens.consume(token, "password_reset");
      if (consumed.outcome !== "ok") return consumed;
      const now = clock.now();
      await db
        .updateTable("users")
        .set({
          password_hash: await hashPassword(password),
          email_verified_at: sql<number>`coalesce(email_verified_at, ${now})`,
          updated_at: now,
        })
        .where("id", "=", consumed.userId)
        .execute();
      await tokens.revokeAll(consumed.userId, "password_reset");
      await sessions.revokeAll(consumed.userId);
      return { outcome: "ok" };
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
