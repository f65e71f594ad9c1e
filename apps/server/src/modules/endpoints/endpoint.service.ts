import type { CreateEndpointBody, EndpointView, Page, UpdateEndpointBody } from "@mitte/contract";
import type { Clock } from "../../lib/clock.js";
import type { SecretBox } from "../../lib/crypto.js";
import { type IdGenerator, newEndpointSlug, newSigningSecret } from "../../lib/ids.js";
import { toPage } from "../../lib/pagination.js";
import type { DeliveryQueue } from "../../queue/queue.js";
import { deleteLogsOf } from "../../storage/delete-in-batches.js";
import type { EndpointRow } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";
import { limitsFor } from "../plans/plan-limits.js";
import type { EndpointDirectory } from "./endpoint-directory.js";

export interface EndpointServiceDeps {
  storage: Storage;
  clock: Clock;
  newId: IdGenerator;
  secretBox: SecretBox;
  directory: EndpointDirectory;
  queue: DeliveryQueue;
  /** Base of ingest URLs, e.g. https://hooks.example.com (no trailing slash). */
  publicUrl: string;
  /** Logs deleted per statement when their endpoint is deleted. Default 1,000 (as retention). */
  logPurgeBatchSize?: number;
}

export type CreateEndpointResult =
  | { outcome: "created"; endpoint: EndpointView }
  | { outcome: "plan_limit_reached"; limit: number };

/** Every query here is scoped by `user_id`: another user's id behaves exactly like an unknown id. */
export function createEndpointService(deps: EndpointServiceDeps) {
  const { storage, clock, newId, secretBox, directory, queue } = deps;
  const { db } = storage;

  function toView(row: EndpointRow, withSecret: boolean): EndpointView {
    const view: EndpointView = {
      id: row.id,
      name: row.name,
      slug: row.slug,
      ingestUrl: `${deps.publicUrl}/api/v1/h/${row.slug}`,
      targetUrl: row.target_url,
      paused: row.is_paused === 1,
      signed: row.signing_secret_sealed !== null,
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
    if (withSecret)
      view.signingSecret =
        row.signing_secret_sealed === null ? null : secretBox.open(row.signing_secret_sealed);
    return view;
  }

  async function findOwned(userId: string, id: string): Promise<EndpointRow | undefined> {
    return db
      .selectFrom("endpoints")
      .selectAll()
      .where("user_id", "=", userId)
      .where("id", "=", id)
      .executeTakeFirst();
  }

  /**
   * Logs left waiting while the endpoint was paused get their jobs back: at once, or at their scheduled retry
   * if that is still ahead (a pause must not skip a backoff or a target's Retry-After).
   */
  async function requeueWaiting(endpointId: string): Promise<number> {
    const waiting = await db
      .selectFrom("webhook_logs")
      .select(["id", "next_attempt_at"])
      .where("endpoint_id", "=", endpointId)
      .where("status", "in", ["queued", "retrying"])
      .execute();
    const now = clock.now();
    await queue.enqueue(
      waiting.map((log) => ({
        logId: log.id,
        endpointId,
        runAtMs: Math.max(now, log.next_attempt_at ?? now),
      })),
    );
    return waiting.length;
  }

  return {
    async create(userId: string, input: CreateEndpointBody): Promise<CreateEndpointResult> {
      // Count and insert in one transaction, serialized per user: concurrent creates must not each see
      // room for one more and together pass the plan's limit. SQLite runs transactions one at a time;
      // PostgreSQL gets the same from a lock on the owner's row.
      return db.transaction().execute(async (trx): Promise<CreateEndpointResult> => {
        const ownerQuery = trx.selectFrom("users").select(["plan", "trial_ends_at"]).where("id", "=", userId);
        const owner = await (storage.dialect === "postgres"
          ? ownerQuery.forUpdate()
          : ownerQuery
        ).executeTakeFirstOrThrow();
        const limit = limitsFor(owner, clock.now()).maxEndpoints;
        const count = await trx
          .selectFrom("endpoints")
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .where("user_id", "=", userId)
          .executeTakeFirstOrThrow();
        if (Number(count.n) >= limit) return { outcome: "plan_limit_reached", limit };

        const secret = input.signingSecret === undefined ? newSigningSecret() : input.signingSecret;
        const now = clock.now();
        const row: EndpointRow = {
          id: newId("ep"),
          user_id: userId,
          name: input.name,
          slug: newEndpointSlug(),
          target_url: input.targetUrl,
          signing_secret_sealed: secret === null ? null : secretBox.seal(secret),
          is_paused: input.paused ? 1 : 0,
          created_at: now,
          updated_at: now,
        };
        await trx.insertInto("endpoints").values(row).execute();
        return { outcome: "created", endpoint: toView(row, true) };
      });
    },

    async list(
      userId: string,
      page: { cursor?: string | undefined; limit: number },
    ): Promise<Page<EndpointView>> {
      let query = db.selectFrom("endpoints").selectAll().where("user_id", "=", userId);
      if (page.cursor) query = query.where("id", "<", page.cursor);
      const rows = await query
        .orderBy("id", "desc")
        .limit(page.limit + 1)
        .execute();
      return toPage(rows, page.limit, (row) => toView(row, false));
    },

    async get(userId: string, id: string): Promise<EndpointView | null> {
      const row = await findOwned(userId, id);
      return row ? toView(row, true) : null;
    },

    async update(userId: string, id: string, patch: UpdateEndpointBody): Promise<EndpointView | null> {
      const row = await findOwned(userId, id);
      if (!row) return null;
      // Only the columns the patch names: writing the whole row back would undo a concurrent change, such
      // as a secret rotated between this read and this write.
      const changes: Partial<EndpointRow> = { updated_at: clock.now() };
      if (patch.name !== undefined) changes.name = patch.name;
      if (patch.targetUrl !== undefined) changes.target_url = patch.targetUrl;
      if (patch.paused !== undefined) changes.is_paused = patch.paused ? 1 : 0;
      if (patch.signingSecret !== undefined)
        changes.signing_secret_sealed =
          patch.signingSecret === null ? null : secretBox.seal(patch.signingSecret);
      const updated = await db
        .updateTable("endpoints")
        .set(changes)
        .where("id", "=", id)
        .where("user_id", "=", userId)
        .returningAll()
        .executeTakeFirst();
      if (!updated) return null;
      await directory.invalidate(row);
      if (row.is_paused === 1 && updated.is_paused === 0) await requeueWaiting(id);
      return toView(updated, true);
    },

    async rotateSecret(userId: string, id: string): Promise<EndpointView | null> {
      const row = await findOwned(userId, id);
      if (!row) return null;
      const updated = await db
        .updateTable("endpoints")
        .set({ signing_secret_sealed: secretBox.seal(newSigningSecret()), updated_at: clock.now() })
        .where("id", "=", id)
        .where("user_id", "=", userId)
        .returningAll()
        .executeTakeFirst();
      if (!updated) return null;
      await directory.invalidate(row);
      return toView(updated, true);
    },

    /** Deletes the endpoint with its logs and attempts (foreign-key cascade), pending ones included. */
    async remove(userId: string, id: string): Promise<boolean> {
      const row = await findOwned(userId, id);
      if (!row) return false;
      // The logs (and, by cascade, their attempts) go first, in bounded batches: a busy endpoint's 100,000
      // logs cascading from one delete held SQLite's only writer for most of a second, and every user's
      // ingest waited. Webhooks that arrive meanwhile are stored, then go with the endpoint's row below.
      await deleteLogsOf(db, { endpointId: id }, deps.logPurgeBatchSize ?? 1_000);
      await db.deleteFrom("endpoints").where("id", "=", id).where("user_id", "=", userId).execute();
      await directory.invalidate(row);
      return true;
    },
  };
}

export type EndpointService = ReturnType<typeof createEndpointService>;
