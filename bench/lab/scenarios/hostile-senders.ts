/**
 * Hostile senders against the public ingest URL (`POST /api/v1/h/:slug`), over raw `node:net` sockets because
 * an HTTP client library would refuse to send most of this (a body bigger than its Content-Length, both
 * Content-Length and Transfer-Encoding, 64 KiB of headers, one byte per second). Every case repeats at random
 * moments; every webhook carries a unique id and goes through the ledger, so anything answered with an error
 * that still reaches the sink, or anything answered 202 that does not arrive byte-exact and signed, fails the
 * books. "Nothing stored" is read through the REST logs API, as a user would see it.
 */
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { type Endpoint, embeddedDeployment, type LabDeployment } from "../deployments.js";
import { Ledger } from "../ledger.js";
import {
  type Check,
  foldBalances,
  type LabContext,
  type Scenario,
  type ScenarioResult,
} from "../scenario.js";
import { type LabSink, labBody, startLabSink, waitForDrain } from "../traffic.js";

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
const MiB = 1024 * 1024;

/** Lowered from the 10 MiB default so at-limit bodies are quick to send 20 times; the code path is the same. */
const LAB_MAX_PAYLOAD_BYTES = MiB;
/** Lowered from the 30 s default so a trickling sender is cut off 20 times within the lab's time budget. */
const LAB_REQUEST_TIMEOUT_MS = 3_000;
/** How long Mitte keeps a connection it is closing after an early error answer (lib/http-guard.ts LINGER_MS). */
const SERVER_LINGER_MS = 2_000;

export const repetitionsFor = (ctx: LabContext) => (ctx.quick ? 3 : 20);

// ---------------------------------------------------------------- shared lab helpers (targets use them too)

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
  return kb === undefined ? Number.NaN : Number(kb) * 1024;
}

/** Samples a process's RSS every `everyMs` while something runs: growth = peak during the run − before it. */
export async function measureRss<T>(
  pid: number,
  run: () => Promise<T>,
  everyMs = 20,
): Promise<{ result: T; beforeBytes: number; peakBytes: number; growthBytes: number; samples: number }> {
  const beforeBytes = rssBytes(pid);
  let peakBytes = beforeBytes;
  let samples = 1;
  const timer = setInterval(() => {
    try {
      peakBytes = Math.max(peakBytes, rssBytes(pid));
      samples += 1;
    } catch {
      // process gone: the scenario's liveness check reports it
    }
  }, everyMs);
  try {
    const result = await run();
    peakBytes = Math.max(peakBytes, rssBytes(pid));
    return { result, beforeBytes, peakBytes, growthBytes: peakBytes - beforeBytes, samples };
  } finally {
    clearInterval(timer);
  }
}

export const mb = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** The REST API as a user sees it: log counts and details (with attempts) of one endpoint. */
export interface LogsApi {
  count(endpointId: string): Promise<number>;
  ids(endpointId: string): Promise<string[]>;
  detail(logId: string): Promise<LogDetail>;
}

export interface AttemptDetail {
  attempt: number;
  startedAt: string;
  durationMs: number;
  outcome: "success" | "failure";
  requestHeaders: Record<string, string>;
  responseStatus: number | null;
  responseHeaders: Record<string, string> | null;
  responseBody: { encoding: "utf8" | "base64"; data: string; size: number; truncated?: boolean } | null;
  errorKind: string | null;
  errorMessage: string | null;
}

export interface LogDetail {
  id: string;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  requestSize: number;
  requestBody: { encoding: "utf8" | "base64"; data: string; size: number };
  attemptDetails: AttemptDetail[];
}

export function logsApi(deployment: LabDeployment): LogsApi {
  const base = deployment.apiUrls()[0]!;
  const headers = { authorization: `Bearer ${deployment.apiKey}` };
  const get = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    if (response.status !== 200)
      throw new Error(`GET ${path} answered ${response.status}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  };
  const ids = async (endpointId: string) => {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `endpointId=${endpointId}&limit=100${cursor ? `&cursor=${cursor}` : ""}`;
      const page: { data: { id: string }[]; nextCursor: string | null } = await get(`/api/v1/logs?${query}`);
      all.push(...page.data.map((log) => log.id));
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  };
  return {
    ids,
    count: async (endpointId) => (await ids(endpointId)).length,
    detail: (logId) => get<LogDetail>(`/api/v1/logs/${logId}`),
  };
}

/** Bytes of a stored body view. */
export function bodyBytes(view: { encoding: "utf8" | "base64"; data: string }): Buffer {
  return Buffer.from(view.data, view.encoding === "base64" ? "base64" : "utf8");
}

/**
 * Collects per-repetition checks and folds them into one line per check name for the report: "20 of 20"
 * with the distinct observations, or how many failed with the first failure.
 */
export class CheckBook {
  readonly #byName = new Map<string, Check[]>();
  readonly notes: string[] = [];

  add(name: string, expected: string, observed: string, pass: boolean): boolean {
    const list = this.#byName.get(name) ?? [];
    list.push({ name, expected, observed, pass });
    this.#byName.set(name, list);
    return pass;
  }

  /** A numeric observation per repetition, reported as min–max over all repetitions. */
  range(
    name: string,
    expected: string,
    values: readonly number[],
    ok: (value: number) => boolean,
    unit = "ms",
  ) {
    const bad = values.filter((value) => !ok(value));
    const finite = values.filter(Number.isFinite);
    const span = finite.length
      ? `min ${Math.round(Math.min(...finite))} ${unit}, max ${Math.round(Math.max(...finite))} ${unit}`
      : "no values";
    this.#byName.set(name, [
      {
        name,
        expected,
        observed: `${values.length - bad.length} of ${values.length} within; ${span}`,
        pass: values.length > 0 && bad.length === 0,
      },
    ]);
  }

  fold(): Check[] {
    const out: Check[] = [];
    for (const [name, list] of this.#byName) {
      if (list.length === 1 && /^\d+ of \d+ within/.test(list[0]!.observed)) {
        out.push(list[0]!);
        continue;
      }
      const failed = list.filter((check) => !check.pass);
      const distinct = [...new Set(list.map((check) => check.observed))];
      out.push({
        name,
        expected: list[0]!.expected,
        observed: failed.length
          ? `${failed.length} of ${list.length} failed; e.g. ${failed[0]!.observed}`
          : `${list.length} of ${list.length}: ${distinct.length <= 3 ? distinct.join(" / ") : `${distinct.slice(0, 3).join(" / ")} …`}`,
        pass: failed.length === 0,
      });
    }
    return out;
  }
}

/** Checks that Mitte is still up and answering, and lists what it logged at error level. */
export async function livenessChecks(deployment: LabDeployment, book: CheckBook): Promise<void> {
  const [mitte] = deployment.processes();
  const alive = mitte !== undefined && mitte.child.exitCode === null && mitte.child.signalCode === null;
  let health = 0;
  try {
    const response = await fetch(`${deployment.apiUrls()[0]}/healthz`, {
      signal: AbortSignal.timeout(5_000),
    });
    health = response.status;
    await response.arrayBuffer();
  } catch {
    health = 0;
  }
  book.add(
    "Mitte still up afterwards",
    "process running, /healthz 200",
    `${alive ? "running" : "exited"}, /healthz ${health || "no answer"}`,
    alive && health === 200,
  );
  if (mitte && mitte.output.total > 0)
    book.notes.push(
      `Mitte printed ${mitte.output.total} log line(s) at LOG_LEVEL=error; last: ${mitte.output.lines.slice(-3).join(" ⏎ ")}`,
    );
}

// ---------------------------------------------------------------- raw HTTP exchange

export interface RawAnswer {
  /** 0 when no complete status line arrived. */
  status: number;
  head: string;
  body: Buffer;
  json: unknown;
  /** Body bytes the client had written when the answer was complete, and in total. */
  writtenAtAnswer: number;
  written: number;
  /**
   * ms from the start of the exchange: answer complete; the server's FIN (it will send nothing more); the
   * connection gone (the server destroyed it, or it ended both ways). The client socket allows half-open
   * connections, so a FIN does not stop it writing: only the server refusing to read does.
   */
  answeredMs: number | null;
  halfClosedByServerMs: number | null;
  closedByServerMs: number | null;
  elapsedMs: number;
}

type Feed = (socket: Socket, count: (bytes: number) => void) => void;

interface ExchangeOptions {
  /** Give up after this long (then the exchange ends with what arrived). */
  timeoutMs: number;
  /**
   * After the answer is complete: end at once (0), keep feeding for this many ms to see whether the server
   * still reads, or "close" to wait until the server closes the connection.
   */
  afterAnswer: number | "close";
}

/** One request on a fresh raw connection: writes `head`, runs `feed`, and reads the answer as it arrives. */
export function rawExchange(
  port: number,
  head: string | Buffer,
  feed: Feed,
  options: ExchangeOptions,
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let received = 0;
    let written = 0;
    let writtenAtAnswer = 0;
    let answeredMs: number | null = null;
    let halfClosedByServerMs: number | null = null;
    let closedByServerMs: number | null = null;
    let settled = false;
    let headEnd = -1;
    let expectedLength = -1;

    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const all = Buffer.concat(chunks);
      const end = all.indexOf("\r\n\r\n");
      const headText = end === -1 ? all.toString("latin1") : all.subarray(0, end).toString("latin1");
      const body = end === -1 ? Buffer.alloc(0) : all.subarray(end + 4);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headText)?.[1] ?? 0);
      let json: unknown = null;
      try {
        json = JSON.parse(body.toString("utf8"));
      } catch {
        json = null;
      }
      resolve({
        status,
        head: headText,
        body,
        json,
        writtenAtAnswer: answeredMs === null ? written : writtenAtAnswer,
        written,
        answeredMs,
        halfClosedByServerMs,
        closedByServerMs,
        elapsedMs: performance.now() - started,
      });
    };
    const timer = setTimeout(finish, options.timeoutMs);

    const onAnswered = () => {
      answeredMs = performance.now() - started;
      writtenAtAnswer = written;
      if (options.afterAnswer === 0) finish();
      else if (typeof options.afterAnswer === "number") setTimeout(finish, options.afterAnswer);
    };
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (answeredMs !== null) return;
      if (headEnd === -1) {
        const all = Buffer.concat(chunks);
        headEnd = all.indexOf("\r\n\r\n");
        if (headEnd === -1) return;
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(all.subarray(0, headEnd).toString("latin1"))?.[1];
        expectedLength = length === undefined ? 0 : Number(length);
      }
      if (received >= headEnd + 4 + expectedLength) onAnswered();
    });
    socket.on("end", () => {
      halfClosedByServerMs ??= performance.now() - started;
    });
    socket.on("close", () => {
      if (!settled) closedByServerMs ??= performance.now() - started;
      finish();
    });
    socket.on("error", () => {});
    socket.write(head);
    feed(socket, (bytes) => {
      written += bytes;
    });
  });
}

/** Writes `total` body bytes as fast as the server takes them (backpressure), starting with `first`. */
function flood(first: Buffer, total: number, chunked: boolean): Feed {
  const filler = Buffer.alloc(64 * 1024, 0x78);
  const frame = (chunk: Buffer) =>
    chunked
      ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")])
      : chunk;
  const framedFiller = frame(filler);
  return (socket, count) => {
    let sent = 0;
    const pump = () => {
      while (sent < total && !socket.destroyed) {
        const chunk = sent === 0 ? first : filler.subarray(0, Math.min(filler.length, total - sent));
        sent += chunk.length;
        count(chunk.length);
        const framed = chunk === filler ? framedFiller : frame(chunk);
        if (!socket.write(framed)) {
          socket.once("drain", pump);
          return;
        }
      }
      if (sent >= total && chunked && !socket.destroyed) socket.write("0\r\n\r\n");
    };
    pump();
  };
}

/** Writes `body` in pieces of random size with random pauses, chunked framing, no Content-Length. */
function chunkedTrickle(body: Buffer, random: () => number): Feed {
  return (socket, count) => {
    let offset = 0;
    const next = () => {
      if (socket.destroyed) return;
      if (offset >= body.length) {
        socket.write("0\r\n\r\n");
        return;
      }
      const size = Math.min(body.length - offset, 1 + Math.floor(random() * 16 * 1024));
      const piece = body.subarray(offset, offset + size);
      offset += size;
      socket.write(Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), piece, Buffer.from("\r\n")]));
      count(size);
      setTimeout(next, Math.floor(random() * 5));
    };
    next();
  };
}

/** One byte every `everyMs` until the socket closes. */
function drip(bytes: Buffer, everyMs: number): Feed {
  return (socket, count) => {
    let index = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || index >= bytes.length) {
        clearInterval(timer);
        return;
      }
      socket.write(bytes.subarray(index, index + 1));
      index += 1;
      count(1);
    }, everyMs);
    socket.once("close", () => clearInterval(timer));
  };
}

const nothing: Feed = () => {};

function requestHead(path: string, headers: Record<string, string>): string {
  const lines = [
    `POST ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** True when the answer is Mitte's JSON error: `{"error":{"code","message"}}` with a JSON content type. */
export function isMitteError(answer: RawAnswer, code?: string): boolean {
  const error = (answer.json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return (
    /\r\ncontent-type:\s*application\/json/i.test(answer.head) &&
    typeof error?.code === "string" &&
    typeof error.message === "string" &&
    (code === undefined || error.code === code)
  );
}

export function describeAnswer(answer: RawAnswer): string {
  if (answer.status === 0)
    return `no answer (${answer.closedByServerMs === null ? "still open" : `closed at ${Math.round(answer.closedByServerMs)} ms`})`;
  const text = answer.body.toString("utf8").slice(0, 140);
  return `${answer.status} ${text}`;
}

// ---------------------------------------------------------------- scenario scaffolding

interface Stand {
  deployment: LabDeployment;
  sink: LabSink;
  endpoint: Endpoint;
  ledger: Ledger;
  logs: LogsApi;
  port: number;
  path: string;
  pid: number;
}

/** A well-formed JSON webhook with Content-Length, over a raw socket like the hostile ones beside it. */
function postJson(stand: Stand, body: Buffer, timeoutMs: number): Promise<RawAnswer> {
  return rawExchange(
    stand.port,
    requestHead(stand.path, { "Content-Type": "application/json", "Content-Length": String(body.length) }),
    (socket, count) => socket.write(body, () => count(body.length)),
    { timeoutMs, afterAnswer: 0 },
  );
}

async function withStand(
  env: Record<string, string>,
  use: (stand: Stand, book: CheckBook) => Promise<void>,
): Promise<{ ledger: Ledger; book: CheckBook }> {
  const sink = await startLabSink();
  const deployment = await embeddedDeployment(env);
  const book = new CheckBook();
  try {
    const endpoint = await deployment.createEndpoint(`${sink.url}/hostile-senders`);
    const ledger = new Ledger(endpoint.signingSecret);
    sink.use(ledger);
    const ingest = new URL(deployment.ingestUrls(endpoint)[0]!);
    const stand: Stand = {
      deployment,
      sink,
      endpoint,
      ledger,
      logs: logsApi(deployment),
      port: Number(ingest.port),
      path: ingest.pathname,
      pid: deployment.processes()[0]!.child.pid!,
    };
    await use(stand, book);
    const drained = await waitForDrain(ledger, 30_000);
    await sleep(300);
    book.add(
      "every 202 reached the sink",
      "drained within 30 s",
      drained ? "drained" : "not drained",
      drained,
    );
    await livenessChecks(deployment, book);
    return { ledger, book };
  } finally {
    await deployment.close();
    await sink.close();
  }
}

type Outcome = Omit<ScenarioResult, "id" | "title" | "mode" | "pass" | "durationMs">;

function outcomeOf(ledger: Ledger, book: CheckBook, repetitions: number, notes: string[]): Outcome {
  const folded = foldBalances([ledger.balance()]);
  const balance = ledger.balance();
  return {
    repetitions,
    sent: folded.sent,
    accepted: folded.accepted,
    lost: folded.lost,
    duplicates: folded.duplicates,
    checks: [...folded.checks, ...book.fold()],
    notes: [
      ...notes,
      ...book.notes,
      `ledger: ${balance.sent} sent, ${balance.accepted} × 202, ${balance.rejected} refused ${JSON.stringify(ledger.statuses())}, ${balance.unknown} without answer, ${balance.receipts} receipts`,
    ],
  };
}

let idCounter = 0;
const nextId = (label: string) => `${label}_${String(++idCounter).padStart(5, "0")}`;

/** Runs a phase's `count` cases one after another, each after a random pause of up to `maxGapMs`. */
async function sequential(
  ctx: LabContext,
  count: number,
  maxGapMs: number,
  run: (index: number) => Promise<void>,
) {
  for (let index = 0; index < count; index += 1) {
    await sleep(Math.floor(ctx.random() * maxGapMs));
    await run(index);
  }
}

/** Runs a phase's `count` cases concurrently, each starting at a random moment within `windowMs`. */
export async function scattered(
  ctx: LabContext,
  count: number,
  windowMs: number,
  run: (index: number) => Promise<void>,
) {
  const offsets = Array.from({ length: count }, () => Math.floor(ctx.random() * windowMs));
  await Promise.all(offsets.map((offset, index) => sleep(offset).then(() => run(index))));
}

/**
 * Log count through the API, before and after a phase whose every hostile request must be refused;
 * `run` returns how many well-behaved webhooks it had accepted meanwhile (those are stored, of course).
 */
async function nothingStored(stand: Stand, book: CheckBook, phase: string, run: () => Promise<unknown>) {
  const before = await stand.logs.count(stand.endpoint.id);
  const result = await run();
  const allowed = typeof result === "number" ? result : 0;
  await sleep(200);
  const after = await stand.logs.count(stand.endpoint.id);
  book.add(
    `${phase}: nothing stored`,
    allowed
      ? `endpoint's log count (GET /api/v1/logs) grows only by the ${allowed} well-behaved webhooks`
      : "endpoint's log count (GET /api/v1/logs) unchanged",
    `${before} → ${after}`,
    after === before + allowed,
  );
}

// ---------------------------------------------------------------- scenario: sizes

const sizes: Scenario = {
  id: "hostile-sender-sizes",
  title: "Hostile senders: payload limit, 100 MB uploads, chunked bodies",
  mode: "embedded",
  quick: true,
  async run(ctx) {
    const reps = repetitionsFor(ctx);
    const limit = LAB_MAX_PAYLOAD_BYTES;
    const notes = [
      `MITTE_MAX_PAYLOAD_BYTES=${limit} (1 MiB, lowered from the 10 MiB default for speed; same code path).`,
      "100 MB uploads: the client writes as fast as the server takes bytes and does not stop on the answer or the server's FIN (half-open socket): after the answer it keeps writing for 500 ms, and the first repetition of each kind keeps writing until the server drops the connection. What it managed to write is what the server read (plus socket buffers).",
    ];
    const { ledger, book } = await withStand(
      { MITTE_MAX_PAYLOAD_BYTES: String(limit) },
      async (stand, book) => {
        const { ledger } = stand;
        // Warm-up so the first measured upload does not pay for lazy initialisation.
        const warm = await rawExchange(
          stand.port,
          requestHead("/api/v1/h/mt_doesnotexist00", { "Content-Length": "2" }),
          (s) => s.write("{}"),
          { timeoutMs: 5_000, afterAnswer: 0 },
        );
        book.add(
          "unknown slug answers the JSON error shape",
          '404 {"error":{"code":"not_found",…}}',
          describeAnswer(warm),
          warm.status === 404 && isMitteError(warm, "not_found"),
        );

        // 100 MB, with Content-Length and chunked, each under RSS sampling.
        for (const chunked of [false, true]) {
          const kind = chunked ? "100 MB chunked, no length" : "100 MB with Content-Length";
          const total = 100 * 1000 * 1000;
          const growth: number[] = [];
          const writtenAtAnswer: number[] = [];
          const answerMs: number[] = [];
          await nothingStored(stand, book, kind, () =>
            sequential(ctx, reps, 300, async (index) => {
              const id = nextId(chunked ? "big_chunked" : "big_length");
              const first = labBody(id, 4096);
              ledger.sent(id, first, performance.now());
              const head = requestHead(stand.path, {
                "Content-Type": "application/json",
                ...(chunked ? { "Transfer-Encoding": "chunked" } : { "Content-Length": String(total) }),
              });
              const waitForClose = index === 0;
              const measured = await measureRss(stand.pid, () =>
                rawExchange(stand.port, head, flood(first, total, chunked), {
                  timeoutMs: 20_000,
                  afterAnswer: waitForClose ? "close" : 500,
                }),
              );
              const answer = measured.result;
              ledger.answered(id, answer.status, performance.now());
              growth.push(measured.growthBytes);
              writtenAtAnswer.push(answer.writtenAtAnswer);
              if (answer.answeredMs !== null) answerMs.push(answer.answeredMs);
              book.add(
                `${kind}: 413 in the JSON error shape`,
                '413 {"error":{"code":"payload_too_large",…}}',
                describeAnswer(answer),
                answer.status === 413 && isMitteError(answer, "payload_too_large"),
              );
              book.add(
                `${kind}: upload cut short`,
                "< 32 MiB written in total (socket buffers), i.e. the server stops reading",
                `${mb(answer.written)} of ${mb(total)} written`,
                answer.written < 32 * MiB,
              );
              if (waitForClose) {
                const closed = answer.closedByServerMs;
                const afterAnswer =
                  closed !== null && answer.answeredMs !== null ? closed - answer.answeredMs : null;
                book.add(
                  `${kind}: server closes the connection after the answer`,
                  `closed within ${SERVER_LINGER_MS} ms linger + 1.5 s`,
                  afterAnswer === null
                    ? "not closed"
                    : `closed ${Math.round(afterAnswer)} ms after the answer`,
                  afterAnswer !== null && afterAnswer <= SERVER_LINGER_MS + 1_500,
                );
              }
              book.notes.push(
                `${kind} #${index + 1}: ${describeAnswer(answer).slice(0, 40)} at ${Math.round(answer.answeredMs ?? -1)} ms, ${mb(answer.writtenAtAnswer)} written by then, ${mb(answer.written)} in total; RSS ${mb(measured.beforeBytes)} → peak ${mb(measured.peakBytes)} (${measured.samples} samples)`,
              );
            }),
          );
          book.range(
            `${kind}: Mitte RSS growth during the upload`,
            "peak − before < 10 MiB (VmRSS every 20 ms)",
            growth.map((bytes) => bytes / MiB),
            (value) => value < 10,
            "MiB",
          );
          book.range(
            `${kind}: time to the 413`,
            "< 2000 ms",
            answerMs.length === reps ? answerMs : [...answerMs, Number.NaN],
            (value) => value < 2_000,
          );
        }

        // Exactly at the limit: 202, delivered byte-exact (ledger).
        await sequential(ctx, reps, 200, async () => {
          const id = nextId("at_limit");
          const body = labBody(id, limit);
          ledger.sent(id, body, performance.now());
          const answer = await postJson(stand, body, 15_000);
          ledger.answered(id, answer.status, performance.now());
          book.add(
            "body exactly at the limit: 202",
            `202 for ${limit} bytes`,
            `${answer.status} for ${body.length} bytes`,
            answer.status === 202 && body.length === limit,
          );
        });

        // One byte over: 413 with Content-Length (refused before reading) and chunked (refused while reading).
        for (const chunked of [false, true]) {
          const kind = `limit + 1 byte${chunked ? ", chunked" : ""}`;
          await nothingStored(stand, book, kind, () =>
            sequential(ctx, reps, 200, async () => {
              const id = nextId("over_limit");
              const body = labBody(id, limit + 1);
              ledger.sent(id, body, performance.now());
              const head = requestHead(stand.path, {
                "Content-Type": "application/json",
                ...(chunked ? { "Transfer-Encoding": "chunked" } : { "Content-Length": String(body.length) }),
              });
              const answer = await rawExchange(stand.port, head, flood(body, body.length, chunked), {
                timeoutMs: 15_000,
                afterAnswer: 0,
              });
              ledger.answered(id, answer.status, performance.now());
              book.add(
                `${kind}: 413 in the JSON error shape`,
                '413 {"error":{"code":"payload_too_large",…}}',
                describeAnswer(answer),
                answer.status === 413 && isMitteError(answer, "payload_too_large"),
              );
            }),
          );
        }

        // A normal body sent chunked (no Content-Length) in random pieces: 202, stored and delivered byte-exact.
        await sequential(ctx, reps, 200, async () => {
          const id = nextId("chunked_ok");
          const body = labBody(id, 1_000 + Math.floor(ctx.random() * 200_000));
          ledger.sent(id, body, performance.now());
          const answer = await rawExchange(
            stand.port,
            requestHead(stand.path, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" }),
            chunkedTrickle(body, ctx.random),
            { timeoutMs: 15_000, afterAnswer: 0 },
          );
          ledger.answered(id, answer.status, performance.now());
          const logId = (answer.json as { id?: string } | null)?.id;
          let stored = "no log id";
          let exact = false;
          if (answer.status === 202 && logId) {
            const detail = await stand.logs.detail(logId);
            const bytes = bodyBytes(detail.requestBody);
            exact = bytes.equals(body) && detail.requestSize === body.length;
            stored = `${bytes.length} bytes stored, ${exact ? "identical" : "DIFFERENT"}`;
          }
          book.add(
            "normal body chunked without length: 202, stored byte-exact (logs API)",
            `202 and GET /api/v1/logs/:id body identical to the ${body.length} bytes sent`,
            `${answer.status}, ${stored}`,
            answer.status === 202 && exact,
          );
        });
      },
    );
    return outcomeOf(ledger, book, reps, notes);
  },
};

// ---------------------------------------------------------------- scenario: slow senders

const slow: Scenario = {
  id: "hostile-sender-slow",
  title: "Hostile senders: 1 byte/s uploads (slowloris)",
  mode: "embedded",
  quick: true,
  async run(ctx) {
    const reps = repetitionsFor(ctx);
    const timeout = LAB_REQUEST_TIMEOUT_MS;
    // Node checks request deadlines every timeout/10 (lib/http-guard.ts), plus scheduling slack.
    const bound = timeout + timeout / 10 + 1_500;
    const notes = [
      `MITTE_REQUEST_TIMEOUT_MS=${timeout} (lowered from the 30 s default so ${reps} trickling senders fit the time budget).`,
      "Both kinds run concurrently, each sender starting at a random moment in a 4 s window, while a well-behaved sender keeps posting webhooks (they must be answered 202 promptly).",
    ];
    const { ledger, book } = await withStand(
      { MITTE_MAX_PAYLOAD_BYTES: String(LAB_MAX_PAYLOAD_BYTES), MITTE_REQUEST_TIMEOUT_MS: String(timeout) },
      async (stand, book) => {
        const { ledger } = stand;
        const answeredAfter = { body: [] as number[], headers: [] as number[] };
        const promptAnswers: number[] = [];
        await nothingStored(stand, book, "1 byte/s senders", async () => {
          let slowDone = false;
          let politeAccepted = 0;
          const wellBehaved = (async () => {
            while (!slowDone) {
              const id = nextId("polite");
              const body = labBody(id, 512);
              ledger.sent(id, body, performance.now());
              const answer = await postJson(stand, body, 10_000);
              ledger.answered(id, answer.status, performance.now());
              if (answer.status === 202) politeAccepted += 1;
              promptAnswers.push(
                answer.status === 202 && answer.answeredMs !== null ? answer.answeredMs : Number.NaN,
              );
              await sleep(100 + Math.floor(ctx.random() * 400));
            }
          })();
          await scattered(ctx, reps * 2, 4_000, async (index) => {
            const kind = index % 2 === 0 ? "body" : "headers";
            const id = nextId(`slow_${kind}`);
            const body = labBody(id, 200);
            ledger.sent(id, body, performance.now());
            const answer =
              kind === "body"
                ? await rawExchange(
                    stand.port,
                    requestHead(stand.path, {
                      "Content-Type": "application/json",
                      "Content-Length": String(body.length),
                    }),
                    drip(body, 1_000),
                    { timeoutMs: bound + 5_000, afterAnswer: "close" },
                  )
                : await rawExchange(
                    stand.port,
                    `POST ${stand.path} HTTP/1.1\r\n`,
                    drip(Buffer.from(`Host: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`), 1_000),
                    { timeoutMs: bound + 5_000, afterAnswer: "close" },
                  );
            ledger.answered(id, answer.status, performance.now());
            answeredAfter[kind].push(answer.answeredMs ?? Number.NaN);
            const label = kind === "body" ? "body at 1 byte/s" : "headers at 1 byte/s";
            book.add(
              `${label}: 408 in the JSON error shape`,
              '408 {"error":{"code":"request_timeout",…}}',
              describeAnswer(answer),
              answer.status === 408 && isMitteError(answer, "request_timeout"),
            );
            // The server half-closes with the answer and drops the connection SERVER_LINGER_MS later; this
            // client keeps dripping and notices the drop at its next byte (≤ 1 s).
            const closedAfter =
              answer.closedByServerMs !== null && answer.answeredMs !== null
                ? answer.closedByServerMs - answer.answeredMs
                : null;
            book.add(
              `${label}: connection closed by the server`,
              `dropped within ${SERVER_LINGER_MS} ms linger + 1 s (next byte) + 1 s after the answer`,
              closedAfter === null ? "still open" : `dropped ${Math.round(closedAfter)} ms after the answer`,
              closedAfter !== null && closedAfter <= SERVER_LINGER_MS + 2_000,
            );
          });
          slowDone = true;
          await wellBehaved;
          return politeAccepted;
        });
        for (const kind of ["body", "headers"] as const)
          book.range(
            `${kind === "body" ? "body" : "headers"} at 1 byte/s: answered after`,
            `${timeout}–${bound} ms (MITTE_REQUEST_TIMEOUT_MS + one check interval + slack)`,
            answeredAfter[kind],
            (value) => value >= timeout - 50 && value <= bound,
          );
        book.range(
          "well-behaved sender meanwhile: 202 answer time",
          "every answer 202 within 1000 ms",
          promptAnswers,
          (value) => value < 1_000,
        );
      },
    );
    return outcomeOf(ledger, book, reps, notes);
  },
};

// ---------------------------------------------------------------- scenario: malformed requests

/** Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong '/', a UTF-16 surrogate, 0xFF. */
const INVALID_UTF8 = Buffer.from([
  0x80, 0xc3, 0x28, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xff, 0xfe, 0xe2, 0x28, 0xa1, 0x00,
]);

const malformed: Scenario = {
  id: "hostile-sender-malformed",
  title: "Hostile senders: oversized headers, conflicting framing, invalid UTF-8",
  mode: "embedded",
  quick: true,
  async run(ctx) {
    const reps = repetitionsFor(ctx);
    const notes = [
      "Invalid UTF-8: the spec (Part 2, Ingestion) says raw bytes are stored and forwarded exactly, any content type; ingest.routes.ts parses every content type as an opaque buffer, so 202 is the defined answer.",
    ];
    const { ledger, book } = await withStand(
      { MITTE_MAX_PAYLOAD_BYTES: String(LAB_MAX_PAYLOAD_BYTES) },
      async (stand, book) => {
        const { ledger } = stand;
        await nothingStored(stand, book, "64 KiB headers", () =>
          sequential(ctx, reps, 200, async () => {
            const id = nextId("big_headers");
            const body = labBody(id, 300);
            ledger.sent(id, body, performance.now());
            const headers: Record<string, string> = {
              "Content-Type": "application/json",
              "Content-Length": String(body.length),
            };
            // 64 KiB in total, either one huge header or many ordinary-looking ones.
            if (ctx.random() < 0.5) headers["X-Padding"] = "p".repeat(64 * 1024);
            else for (let i = 0; i < 64; i += 1) headers[`X-Pad-${i}`] = "p".repeat(1_000);
            const answer = await rawExchange(
              stand.port,
              Buffer.concat([Buffer.from(requestHead(stand.path, headers)), body]),
              nothing,
              { timeoutMs: 10_000, afterAnswer: 0 },
            );
            ledger.answered(id, answer.status, performance.now());
            book.add(
              "64 KiB of headers: 431 in the JSON error shape",
              '431 {"error":{"code":"headers_too_large",…}}',
              describeAnswer(answer),
              answer.status === 431 && isMitteError(answer, "headers_too_large"),
            );
          }),
        );

        await nothingStored(stand, book, "Content-Length with Transfer-Encoding", () =>
          sequential(ctx, reps, 200, async (index) => {
            const id = nextId("cl_te");
            const body = labBody(id, 300);
            ledger.sent(id, body, performance.now());
            const framing = [`Content-Length: ${body.length}`, "Transfer-Encoding: chunked"];
            if (index % 2 === 1) framing.reverse();
            const head = `POST ${stand.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing.join("\r\n")}\r\n\r\n`;
            const chunkedBody = `${body.length.toString(16)}\r\n${body.toString("latin1")}\r\n0\r\n\r\n`;
            const answer = await rawExchange(stand.port, Buffer.from(head + chunkedBody, "latin1"), nothing, {
              timeoutMs: 10_000,
              afterAnswer: 0,
            });
            ledger.answered(id, answer.status, performance.now());
            book.add(
              "Content-Length + Transfer-Encoding: 400 in the JSON error shape",
              '400 {"error":{"code":"bad_request",…}}',
              describeAnswer(answer),
              answer.status === 400 && isMitteError(answer, "bad_request"),
            );
          }),
        );

        // Invalid UTF-8, as JSON and as octet-stream: accepted, stored and delivered byte-exact.
        const accepted: { logId: string; body: Buffer; contentType: string }[] = [];
        await sequential(ctx, reps * 2, 200, async (index) => {
          const contentType = index % 2 === 0 ? "application/json" : "application/octet-stream";
          const id = nextId("bad_utf8");
          const noise = Buffer.from(Array.from({ length: 64 }, () => Math.floor(ctx.random() * 256)));
          const body = Buffer.concat([
            Buffer.from(`{"id":"${id}","bad":"`),
            INVALID_UTF8,
            noise,
            Buffer.from('"}'),
          ]);
          ledger.sent(id, body, performance.now());
          const answer = await rawExchange(
            stand.port,
            Buffer.concat([
              Buffer.from(
                requestHead(stand.path, {
                  "Content-Type": contentType,
                  "Content-Length": String(body.length),
                }),
              ),
              body,
            ]),
            nothing,
            { timeoutMs: 10_000, afterAnswer: 0 },
          );
          ledger.answered(id, answer.status, performance.now());
          const logId = (answer.json as { id?: string } | null)?.id;
          book.add(
            `invalid UTF-8 as ${contentType}: 202`,
            "202 (raw bytes, any content type)",
            answer.status === 202 ? `202, log id ${logId ? "returned" : "missing"}` : describeAnswer(answer),
            answer.status === 202 && typeof logId === "string",
          );
          if (answer.status === 202 && logId) accepted.push({ logId, body, contentType });
        });
        // Stored byte-exact (logs API shows non-UTF-8 as base64) and forwarded with its content type.
        await waitForDrain(ledger, 20_000);
        for (const { logId, body, contentType } of accepted) {
          let detail = await stand.logs.detail(logId);
          for (let i = 0; i < 50 && detail.attemptDetails.length === 0; i += 1) {
            await sleep(100);
            detail = await stand.logs.detail(logId);
          }
          const stored = bodyBytes(detail.requestBody);
          book.add(
            `invalid UTF-8 as ${contentType}: stored byte-exact`,
            "logs API body (base64) decodes to the bytes sent",
            `${detail.requestBody.encoding}, ${stored.length} bytes, ${stored.equals(body) ? "identical" : "DIFFERENT"}`,
            stored.equals(body),
          );
          const forwarded = detail.attemptDetails[0]?.requestHeaders["content-type"];
          book.add(
            `invalid UTF-8 as ${contentType}: delivered with its content type`,
            `attempt sent Content-Type ${contentType}`,
            String(forwarded),
            forwarded === contentType,
          );
        }
      },
    );
    return outcomeOf(ledger, book, reps, notes);
  },
};

export const hostileSenderScenarios: Scenario[] = [sizes, slow, malformed];
