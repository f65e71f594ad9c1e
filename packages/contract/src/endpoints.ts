import { z } from "zod";
import { pageCursor } from "./pagination.js";

/** Target URLs: absolute http(s), no embedded credentials (they would be stored in clear). */
export const targetUrlSchema = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "http:" || url.protocol === "https:") && !url.username && !url.password;
    } catch {
      return false;
    }
  }, "must be an absolute http:// or https:// URL without credentials");

export const signingSecretSchema = z
  .string()
  .regex(
    /^whsec_[A-Za-z0-9+/=_-]{16,128}$/,
    "must look like whsec_ followed by 16 to 128 URL-safe characters",
  );

export const createEndpointBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  targetUrl: targetUrlSchema,
  /** Omitted: a secret is generated. null: deliveries are not signed. */
  signingSecret: signingSecretSchema.nullable().optional(),
  paused: z.boolean().optional(),
});
export type CreateEndpointBody = z.infer<typeof createEndpointBody>;

export const updateEndpointBody = z
  .strictObject({
    name: z.string().trim().min(1).max(100),
    targetUrl: targetUrlSchema,
    signingSecret: signingSecretSchema.nullable(),
    paused: z.boolean(),
  })
  .partial()
  .refine((body) => Object.keys(body).length > 0, "send at least one field to change");
export type UpdateEndpointBody = z.infer<typeof updateEndpointBody>;

export const sendTestBody = z
  .strictObject({
    /** Any JSON value; defaults to a sample event. */
    payload: z.unknown().optional(),
  })
  .optional();

export const listQuery = z.strictObject({
  cursor: pageCursor.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

export interface EndpointView {
  id: string;
  name: string;
  slug: string;
  ingestUrl: string;
  targetUrl: string;
  paused: boolean;
  signed: boolean;
  /** Present on create, rotate and single-endpoint reads; never in lists. */
  signingSecret?: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}
