import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../test-support/harness.js";
import { listOutbox, OutboxMailer } from "./mailer.js";

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => h.close());

describe("OutboxMailer", () => {
  it("keeps the mail for `mitte mail list` and logs neither its address nor its links", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });
    const mailer = new OutboxMailer(h.db, h.clock, h.deps.newId, logger);
    const link = "http://localhost:3000/reset-password?token=SECRET-RESET-TOKEN";
    await mailer.send({
      to: "kim@example.com",
      subject: "Reset your Mitte password",
      text: `Open ${link}`,
      links: [link],
    });
    expect(await listOutbox(h.db)).toMatchObject([{ to: "kim@example.com", links: [link] }]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("Reset your Mitte password");
    expect(lines[0]).not.toContain("SECRET-RESET-TOKEN");
    expect(lines[0]).not.toContain("kim@example.com");
  });
});
