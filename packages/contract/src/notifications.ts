import { z } from "zod";
import { targetUrlSchema } from "./endpoints.js";
import { pageCursor } from "./pagination.js";

export const listNotificationsQuery = z.strictObject({
  cursor: pageCursor.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  unread: z
    .enum(["true", "false"])
    .transform((value) => value === "true")
    .optional(),
});

export const updatePreferencesBody = z
  .strictObject({
    emailEnabled: z.boolean(),
    webhookEnabled: z.boolean(),
    webhookUrl: targetUrlSchema.nullable(),
  })
  .partial()
  .refine((body) => Object.keys(body).length > 0, "send at least one field to change");
