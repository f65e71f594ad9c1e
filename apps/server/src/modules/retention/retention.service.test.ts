import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { type Sink, startSink } from "../../test-support/sink.js";

let h: Harness;
let sink: Sink | undefined;
afterEach(async () => {
  await h.close();
  await sink?.close();
  sink = undefined;
});

const DAY = 24 * 60 * 60 * 1000;

describe("log retention", () => {
  it("deletes delivered Free logs after 3 days and Pro logs after 14, in batches, with their attempts", async () => {
    h = await createHarness();
    sink = await startSink();
    const free = await h.createUser("free");
    const pro = await h.createUser("pro");
    const trial = await h.createUser("free");
    await h.db
      .updateTable("users")
      .set({ trial_ends_at: h.clock.now() + 30 * DAY })
      .where("id", "=", trial.userId)
      .execute();
    const slugs: Record<string, string> = {};
    for (const [name, user] of Object.entries({ free, pro, trial })) {
      slugs[name] = (await h.createEndpoint(user.headers, { name, targetUrl: sink.url })).slug;
    }
    const sendAll = async (count: number) => {
      for (const slug of Object.values(slugs)) {
        for (let i = 0; i < count; i++)
          await h.app.inject({ method: "POST", url: `/api/v1/h/${slug}`, payload: { i } });
      }
      await h.services.ingest.flush();
      await h.runDeliveries();
    };
    await sendAll(3); // day 0
    h.clock.advance(5 * DAY);
    await sendAll(1); // day 5

    const counts = async () => {
      const rows = await h.db
        .selectFrom("webhook_logs")
        .innerJoin("users", "users.id", "webhook_logs.user_id")
        .select(["users.id as user"])
        .execute();
      const by = (id: string) => rows.filter((row) => row.user === id).length;
      return { free: by(free.userId), pro: by(pro.userId), trial: by(trial.userId) };
    };
    expect(await counts()).toEqual({ free: 4, pro: 4, trial: 4 });

    const { createRetentionService } = await import("./retention.service.js");
    const retention = createRetentionService({
      storage: h.deps.storage,
      clock: h.clock,
      logger: h.deps.logger,
      batchSize: 2,
    });
    expect(await retention.runOnce()).toMatchObject({ deleted: 3 });
    expect(await counts()).toEqual({ free: 1, pro: 4, trial: 4 });

    h.clock.advance(10 * DAY); // day 15: day-0 logs of Pro and trial users expire, day-5 ones stay
    expect(await retention.runOnce()).toMatchObject({ deleted: 7 });
    expect(await counts()).toEqual({ free: 0, pro: 1, trial: 1 });
    // The deleted logs' attempts went with them: only the two surviving logs' remain.
    expect(await h.db.selectFrom("delivery_attempts").selectAll().execute()).toHaveLength(2);
  });

  it("deletes expired sessions and sign-in states, mail links a week after they expired, and week-old outbox mail", async () => {
    h = await createHarness();
    const { userId } = await h.createUser("pro");
    const now = h.clock.now();
    const session = (id: string, expiresAt: number) => ({
      id,
      user_id: userId,
      token_hash: `hash-${id}`,
      created_at: now - DAY,
      expires_at: expiresAt,
      last_seen_at: now - DAY,
    });
    await h.db
      .insertInto("sessions")
      .values([session("ses_old", now - 1), session("ses_live", now + DAY)])
      .execute();
    const state = (hash: string, expiresAt: number) => ({
      state_hash: hash,
      provider: "github",
      code_verifier: "v",
      created_at: now - DAY,
      expires_at: expiresAt,
    });
    await h.db
      .insertInto("oauth_states")
      .values([state("s_old", now - 1), state("s_live", now + 60_000)])
      .execute();
    const link = (id: string, expiresAt: number) => ({
      id,
      user_id: userId,
      purpose: "password_reset" as const,
      token_hash: `hash-${id}`,
      created_at: now - 10 * DAY,
      expires_at: expiresAt,
      used_at: null,
    });
    await h.db
      .insertInto("one_time_tokens")
      .values([link("ott_week_old", now - 8 * DAY), link("ott_recent", now - DAY)])
      .execute();
    const mail = (id: string, createdAt: number) => ({
      id,
      to_address: "kim@example.com",
      subject: "Reset your Mitte password",
      text_body: "Open http://localhost:3000/reset-password?token=t",
      links: '["http://localhost:3000/reset-password?token=t"]',
      created_at: createdAt,
    });
    await h.db
      .insertInto("mail_outbox")
      .values([mail("mail_week_old", now - 8 * DAY), mail("mail_recent", now - DAY)])
      .execute();

    const { createRetentionService } = await import("./retention.service.js");
    const retention = createRetentionService({
      storage: h.deps.storage,
      clock: h.clock,
      logger: h.deps.logger,
    });
    expect(await retention.runOnce()).toEqual({ deleted: 0, credentials: 3, mails: 1 });
    expect((await h.db.selectFrom("mail_outbox").select("id").execute()).map((r) => r.id)).toEqual([
      "mail_recent",
    ]);
    expect((await h.db.selectFrom("sessions").select("id").execute()).map((r) => r.id)).toEqual(["ses_live"]);
    expect(
      (await h.db.selectFrom("oauth_states").select("state_hash").execute()).map((r) => r.state_hash),
    ).toEqual(["s_live"]);
    expect((await h.db.selectFrom("one_time_tokens").select("id").execute()).map((r) => r.id)).toEqual([
      "ott_recent",
    ]);
  });

  it("keeps logs not yet delivered, however old: a paused endpoint's webhooks wait for its resume", async () => {
    h = await createHarness();
    const user = await h.createUser("free");
    const endpoint = await h.createEndpoint(user.headers, {
      name: "paused",
      targetUrl: "http://127.0.0.1:9/",
      paused: true,
    });
    const sent = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${endpoint.slug}`,
      payload: { kept: 1 },
    });
    expect(sent.statusCode).toBe(202);
    h.clock.advance(10 * DAY); // far past Free's 3 days

    const { createRetentionService } = await import("./retention.service.js");
    const retention = createRetentionService({
      storage: h.deps.storage,
      clock: h.clock,
      logger: h.deps.logger,
    });
    expect(await retention.runOnce()).toMatchObject({ deleted: 0 });
    const log = await h.app.inject({
      method: "GET",
      url: `/api/v1/logs/${sent.json().id}`,
      headers: user.headers,
    });
    expect([log.statusCode, log.json().status]).toEqual([200, "queued"]);
  });
});
