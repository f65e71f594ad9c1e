import { z } from "zod";

/**
 * A list's `cursor`: the `nextCursor` of the previous page, which is the id of its last item. Anything else
 * is refused rather than answered with an empty page, which a client would read as the end of the list.
 */
export const pageCursor = z
  .string()
  .regex(/^[a-z]{2,4}_[0-9a-z]{26}$/, "not a cursor: pass the nextCursor of the previous page");
