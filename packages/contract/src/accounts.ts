import { z } from "zod";

const email = z.string().trim().toLowerCase().pipe(z.email()).pipe(z.string().max(254));

export const signupBody = z.strictObject({
  email,
  /** Strength is judged by the server (length, variety, not the email), so it can explain a refusal. */
  password: z.string().max(1000),
  name: z.string().trim().min(1).max(100).optional(),
});

export const loginBody = z.strictObject({ email, password: z.string().max(1000) });

export const tokenBody = z.strictObject({ token: z.string().min(10).max(200) });

export const passwordResetBody = z.strictObject({ email });

export const passwordResetConfirmBody = z.strictObject({
  token: z.string().min(10).max(200),
  password: z.string().max(1000),
});

export const updateMeBody = z
  .strictObject({ name: z.string().trim().min(1).max(100).nullable() })
  .partial()
  .refine((body) => Object.keys(body).length > 0, "send at least one field to change");

export interface MeView {
  id: string;
  email: string;
  name: string | null;
  avatarUrl: string | null;
  emailVerified: boolean;
  plan: "free" | "pro";
  /** The plan whose limits apply now (Pro during the trial). */
  effectivePlan: "free" | "pro";
  trialEndsAt: string | null;
  createdAt: string;
}
