import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { Resend } from "resend";
import type { Database } from "../storage/schema.js";
import type { Clock } from "./clock.js";
import type { IdGenerator } from "./ids.js";

export interface Mail {
  to: string;
  subject: string;
  text: string;
  /** Links the mail carries (verification, reset); listed by `mitte mail list`. */
  links?: string[];
}

/** Port for transactional mail. */
export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** Resend, through its official client; `baseUrl` points it at a stand-in in tests. */
export class ResendMailer implements Mailer {
  readonly #client: Resend;

  constructor(
    apiKey: string,
    private readonly from: string,
    baseUrl?: string,
  ) {
    this.#client = new Resend(apiKey, baseUrl ? { baseUrl } : undefined);
  }

  async send(mail: Mail): Promise<void> {
    const { error } = await this.#client.emails.send({
      from: this.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
    });
    if (error) throw new Error(`Resend refused the mail: ${error.message}`);
  }
}

/**
 * Without a mail provider, mail goes to an outbox table and the log, so a self-hoster can still complete
 * sign-up: `npx mitte mail list --json` shows the newest first with their links.
 */
export class OutboxMailer implements Mailer {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly newId: IdGenerator,
    private readonly logger: Logger,
  ) {}

  async send(mail: Mail): Promise<void> {
    const id = this.newId("mail");
    await this.db
      .insertInto("mail_outbox")
      .values({
        id,
        to_address: mail.to,
        subject: mail.subject,
        text_body: mail.text,
        links: JSON.stringify(mail.links ?? []),
        created_at: this.clock.now(),
      })
      .execute();
    // Neither the address nor the links: a reset link in the logs is an account to whoever reads them.
    // `mitte mail list` shows the mail to the operator.
    this.logger.info(
      { mailId: id, subject: mail.subject },
      "mail kept in the outbox (no RESEND_API_KEY): mitte mail list",
    );
  }
}

export async function listOutbox(db: Kysely<Database>, limit = 20) {
  const rows = await db.selectFrom("mail_outbox").selectAll().orderBy("id", "desc").limit(limit).execute();
  return rows.map((row) => ({
    to: row.to_address,
    subject: row.subject,
    text: row.text_body,
    links: JSON.parse(row.links) as string[],
    createdAt: new Date(row.created_at).toISOString(),
  }));
}
