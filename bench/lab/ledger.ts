/**
 * The books of one lab run. Every webhook the load generator sends gets a unique id and a line here: sent,
 * then 202 (accepted), another status (rejected: Mitte said no, so it must never arrive), or no answer at
 * all (unknown: the connection broke or timed out, e.g. kill -9 mid-request; it may or may not arrive, both
 * are correct). The sink books each receipt after checking its signature and that the body is byte-identical
 * to what was sent. A run balances when every accepted id was received, no rejected id was, and every receipt
 * was signed and intact; duplicates are counted (at-least-once allows them) but do not unbalance the books.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

type SendState = "sent" | "accepted" | "rejected" | "unknown";

interface SendLine {
  state: SendState;
  status: number;
  bodySha: string;
  /** performance.now() the request was due (open loop), and when its answer came. */
  scheduledAt: number;
  answeredAt: number;
}

interface ReceiptLine {
  count: number;
  firstAt: number;
}

export interface LedgerBalance {
  sent: number;
  accepted: number;
  rejected: number;
  unknown: number;
  receivedDistinct: number;
  receipts: number;
  duplicates: number;
  /** Accepted ids never received. */
  lost: string[];
  /** Rejected ids that were received anyway. */
  phantom: string[];
  /** Receipts whose id was never sent by this run. */
  strangers: number;
  badSignatures: number;
  badBodies: number;
  /** Unknown-outcome ids that arrived (fine either way; reported for insight). */
  unknownDelivered: number;
  balanced: boolean;
  problems: string[];
}

const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");

export class Ledger {
  readonly #sends = new Map<string, SendLine>();
  readonly #receipts = new Map<string, ReceiptLine>();
  #strangers = 0;
  #badSignatures = 0;
  #badBodies = 0;
  #receiptCount = 0;
  readonly #statuses = new Map<number, number>();

  /** `secret` is the endpoint's whsec_ signing secret, or null when the endpoint signs nothing. */
  constructor(private readonly secret: string | null) {}

  sent(id: string, body: Buffer | string, scheduledAt: number): void {
    this.#sends.set(id, {
      state: "sent",
      status: 0,
      bodySha: sha256(body),
      scheduledAt,
      answeredAt: Number.NaN,
    });
  }

  answered(id: string, status: number, at: number): void {
    const line = this.#sends.get(id);
    if (!line) return;
    line.state = status === 202 ? "accepted" : "rejected";
    line.status = status;
    line.answeredAt = at;
    this.#statuses.set(status, (this.#statuses.get(status) ?? 0) + 1);
  }

  noAnswer(id: string): void {
    const line = this.#sends.get(id);
    if (line) line.state = "unknown";
  }

  /** Books one delivery the sink received. Returns false for a receipt that fails verification. */
  received(id: string | null, body: Buffer, signatureHeader: string | undefined, at: number): boolean {
    this.#receiptCount += 1;
    const line = id === null ? undefined : this.#sends.get(id);
    if (!line || id === null) {
      this.#strangers += 1;
      return false;
    }
    let ok = true;
    if (this.secret !== null && !this.#signatureValid(body, signatureHeader)) {
      this.#badSignatures += 1;
      ok = false;
    }
    if (sha256(body) !== line.bodySha) {
      this.#badBodies += 1;
      ok = false;
    }
    const receipt = this.#receipts.get(id);
    if (receipt) receipt.count += 1;
    else this.#receipts.set(id, { count: 1, firstAt: at });
    return ok;
  }

  #signatureValid(body: Buffer, header: string | undefined): boolean {
    if (!header || this.secret === null) return false;
    const parts = Object.fromEntries(header.split(",").map((part) => part.split("=", 2) as [string, string]));
    const t = parts.t;
    const v1 = parts.v1;
    if (!t || !v1) return false;
    const mac = createHmac("sha256", this.secret).update(`${t}.`).update(body).digest();
    const given = Buffer.from(v1, "hex");
    return given.length === mac.length && timingSafeEqual(given, mac);
  }

  /** Accepted ids not yet received (what the drain wait polls). */
  outstanding(): number {
    let missing = 0;
    for (const [id, line] of this.#sends)
      if (line.state === "accepted" && !this.#receipts.has(id)) missing += 1;
    return missing;
  }

  get acceptedCount(): number {
    let n = 0;
    for (const line of this.#sends.values()) if (line.state === "accepted") n += 1;
    return n;
  }

  statuses(): Record<string, number> {
    return Object.fromEntries([...this.#statuses].map(([status, count]) => [String(status), count]));
  }

  /** ingest→receipt latency (ms from the scheduled send time) of every accepted, received id. */
  latenciesMs(): number[] {
    const out: number[] = [];
    for (const [id, line] of this.#sends) {
      const receipt = this.#receipts.get(id);
      if (line.state === "accepted" && receipt) out.push(receipt.firstAt - line.scheduledAt);
    }
    return out;
  }

  /** Answer latency (ms from the scheduled send time) of every answered request. */
  answerLatenciesMs(): number[] {
    const out: number[] = [];
    for (const line of this.#sends.values())
      if (Number.isFinite(line.answeredAt)) out.push(line.answeredAt - line.scheduledAt);
    return out;
  }

  balance(): LedgerBalance {
    const lost: string[] = [];
    const phantom: string[] = [];
    let accepted = 0;
    let rejected = 0;
    let unknown = 0;
    let unknownDelivered = 0;
    for (const [id, line] of this.#sends) {
      const got = this.#receipts.has(id);
      if (line.state === "accepted") {
        accepted += 1;
        if (!got) lost.push(id);
      } else if (line.state === "rejected") {
        rejected += 1;
        if (got) phantom.push(id);
      } else {
        // "sent" with no settle counts as unknown too: the generator gave up waiting.
        unknown += 1;
        if (got) unknownDelivered += 1;
      }
    }
    let duplicates = 0;
    for (const receipt of this.#receipts.values()) duplicates += receipt.count - 1;
    const problems: string[] = [];
    if (lost.length)
      problems.push(`${lost.length} accepted never received (first: ${lost.slice(0, 3).join(", ")})`);
    if (phantom.length) problems.push(`${phantom.length} rejected but received (first: ${phantom[0]})`);
    if (this.#badSignatures) problems.push(`${this.#badSignatures} receipts with a bad signature`);
    if (this.#badBodies) problems.push(`${this.#badBodies} receipts whose body differs from what was sent`);
    if (this.#strangers) problems.push(`${this.#strangers} receipts of ids this run never sent`);
    return {
      sent: this.#sends.size,
      accepted,
      rejected,
      unknown,
      receivedDistinct: this.#receipts.size,
      receipts: this.#receiptCount,
      duplicates,
      lost,
      phantom,
      strangers: this.#strangers,
      badSignatures: this.#badSignatures,
      badBodies: this.#badBodies,
      unknownDelivered,
      balanced: problems.length === 0,
      problems,
    };
  }
}
