/**
 * Faults in the processes and services under Mitte, each at random moments while the ledger-checked load
 * runs: kill -9 during ingestion and mid-delivery, SIGTERM under load, Redis stopped for 5 s and 60 s,
 * PostgreSQL backends terminated. After each fault the process or service comes back, the load finishes,
 * and the books must balance: every 202 delivered, nothing answered with an error delivered.
 */
import { performance } from "node:perf_hooks";
import { PgAdmin } from "../../scale.js";
import { embeddedDeployment, type LabDeployment, type Role, scaleDeployment } from "../deployments.js";
import { Ledger, type LedgerBalance } from "../ledger.js";
import { type Check, foldBalances, type LabContext, type Mode, type Scenario } from "../scenario.js";
import { type LabSink, sendOpenLoop, startLabSink, waitForDrain } from "../traffic.js";

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** How long the books may stay open after the load: scale mode waits for BullMQ's stalled-job check (15 s). */
const DRAIN_TIMEOUT_MS = { embedded: 30_000, scale: 90_000 } as const;

async function withDeployment<T>(
  mode: Mode,
  admin: () => Promise<PgAdmin>,
  use: (deployment: LabDeployment, sink: LabSink) => Promise<T>,
): Promise<T> {
  const sink = await startLabSink();
  const deployment =
    mode === "embedded" ? await embeddedDeployment() : await scaleDeployment(await admin(), { apis: 2 });
  try {
    return await use(deployment, sink);
  } finally {
    await deployment.close();
    await sink.close();
  }
}

let sharedAdmin: PgAdmin | null = null;
const pgAdmin = async () => {
  sharedAdmin ??= await PgAdmin.open();
  return sharedAdmin;
};

export async function closeProcessFaultResources(): Promise<void> {
  await sharedAdmin?.close();
  sharedAdmin = null;
}

interface Repetition {
  balance: LedgerBalance;
  checks: Check[];
  notes: string[];
}

/**
 * One repetition: open-loop load of `count` webhooks at `rate`; at a random moment inside the load window
 * the fault runs (it also brings things back); then the load finishes and the books wait for the drain.
 */
async function repetition(
  ctx: LabContext,
  deployment: LabDeployment,
  sink: LabSink,
  options: {
    label: string;
    rate: number;
    count: number;
    /** Fault offset range in ms from the start of the load. */
    faultWindow: [number, number];
    fault: (ledger: Ledger) => Promise<{ checks?: Check[]; notes?: string[] }>;
    sinkDelayMs?: () => number;
  },
): Promise<Repetition> {
  const endpoint = await deployment.createEndpoint(`${sink.url}/${options.label}`);
  const ledger = new Ledger(endpoint.signingSecret);
  sink.use(ledger, `/${options.label}`);
  sink.behave({ kind: "ok", delayMs: options.sinkDelayMs });
  const [from, to] = options.faultWindow;
  const faultAt = from + ctx.random() * (to - from);
  const load = sendOpenLoop({
    targets: deployment.ingestUrls(endpoint),
    ratePerSec: options.rate,
    count: options.count,
    ledger,
    idPrefix: options.label,
    timeoutMs: 15_000,
  });
  const faultDone = sleep(faultAt).then(() => options.fault(ledger));
  const [, faultResult] = await Promise.all([load, faultDone]);
  const drained = await waitForDrain(ledger, DRAIN_TIMEOUT_MS[deployment.mode]);
  // Late duplicates still count: give in-flight redeliveries a moment before closing the books.
  await sleep(drained ? 300 : 0);
  const balance = ledger.balance();
  const internalErrors = ledger.statuses()["500"] ?? 0;
  const checks: Check[] = [
    ...(faultResult.checks ?? []),
    {
      name: "no 500 answers (a fault answers 503 + Retry-After)",
      expected: "0",
      observed: String(internalErrors),
      pass: internalErrors === 0,
    },
  ];
  const notes = [
    ...(faultResult.notes ?? []),
    `${options.label}: fault at ${Math.round(faultAt)} ms; ${balance.accepted} × 202, ${balance.rejected} other answers ${JSON.stringify(ledger.statuses())}, ${balance.unknown} without answer (${balance.unknownDelivered} of those delivered), ${balance.duplicates} duplicates`,
  ];
  return { balance, checks, notes };
}

function summarise(reps: Repetition[], extraChecks: Check[] = []) {
  const folded = foldBalances(reps.map((rep) => rep.balance));
  const checks = [...folded.checks, ...extraChecks];
  // Per-repetition fault checks, folded per name so the report stays readable.
  const byName = new Map<string, Check[]>();
  for (const rep of reps)
    for (const check of rep.checks) byName.set(check.name, [...(byName.get(check.name) ?? []), check]);
  for (const [name, list] of byName) {
    const failed = list.filter((check) => !check.pass);
    checks.push({
      name,
      expected: list[0]!.expected,
      observed: failed.length
        ? `${failed.length} of ${list.length} failed; e.g. ${failed[0]!.observed}`
        : `${list.length} of ${list.length}: ${summariseObserved(list)}`,
      pass: failed.length === 0,
    });
  }
  const notes = reps.flatMap((rep) => rep.notes);
  return { ...folded, checks, notes, repetitions: reps.length };
}

function summariseObserved(list: Check[]): string {
  const values = [...new Set(list.map((check) => check.observed))];
  return values.length <= 3 ? values.join(" / ") : `${values.slice(0, 3).join(" / ")} …`;
}

const repetitionsOf = (ctx: LabContext, full = 20) => (ctx.quick ? 3 : full);

type RepetitionOptions = Parameters<typeof repetition>[3];

/**
 * A scenario that repeats one fault: a deployment of `mode` for the whole scenario, `repetitionsOf(ctx)`
 * repetitions whose options `plan` gives (label, load, fault), books folded at the end.
 */
function faultScenario(
  meta: Omit<Scenario, "run">,
  plan: (ctx: LabContext, deployment: LabDeployment, index: number) => RepetitionOptions,
  finalChecks?: (deployment: LabDeployment) => Check[],
): Scenario {
  return {
    ...meta,
    async run(ctx) {
      const mode: Mode = meta.mode === "embedded" ? "embedded" : "scale";
      return withDeployment(mode, pgAdmin, async (deployment, sink) => {
        const reps: Repetition[] = [];
        for (let i = 0; i < repetitionsOf(ctx); i += 1) {
          const rep = await repetition(ctx, deployment, sink, plan(ctx, deployment, i));
          reps.push(rep);
          ctx.log(`  ${reps.length}: ${rep.balance.balanced ? "balanced" : "VOID"} ${rep.notes.at(-1)}`);
        }
        return summarise(reps, finalChecks?.(deployment));
      });
    },
  };
}

// ---------------------------------------------------------------- kill -9 during ingestion

const kill9Ingest = (mode: Mode) =>
  faultScenario(
    {
      id: `kill9-ingest-${mode}`,
      title: `kill -9 of the ${mode === "embedded" ? "process" : "first of two api processes"} during ingestion`,
      mode,
      quick: true,
    },
    (_ctx, deployment, i) => ({
      label: `k9i${i}`,
      rate: 400,
      count: 800,
      faultWindow: [100, 1_800],
      fault: async () => {
        const exit = await deployment.stop("ingest", "SIGKILL");
        const downAt = performance.now();
        await deployment.restart("ingest");
        return { notes: [`exit ${exit}, back after ${Math.round(performance.now() - downAt)} ms`] };
      },
    }),
  );

// ---------------------------------------------------------------- kill -9 mid-delivery

const kill9Delivery = (mode: Mode) =>
  faultScenario(
    {
      id: `kill9-delivery-${mode}`,
      title: `kill -9 of the ${mode === "embedded" ? "process" : "worker process"} mid-delivery`,
      mode,
      quick: true,
    },
    (ctx, deployment, i) => ({
      label: `k9d${i}`,
      rate: 500,
      count: 600,
      // The sink answers slowly, so many deliveries are in flight when the kill lands.
      sinkDelayMs: () => 20 + Math.floor(ctx.random() * 80),
      faultWindow: [300, 1_500],
      fault: async (ledger) => {
        // The first receipts can take longer than the fault window's start (scale mode on a loaded machine
        // delivered its first webhook after the kill once): the kill waits for them, up to 5 s.
        const waitUntil = performance.now() + 5_000;
        while (ledger.balance().receipts === 0 && performance.now() < waitUntil) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        const receiptsBefore = ledger.balance().receipts;
        const exit = await deployment.stop("delivery", "SIGKILL");
        await deployment.restart("delivery");
        return {
          checks: [
            {
              name: "the kill landed while deliveries were flowing",
              expected: "some receipts before the kill",
              observed: `${receiptsBefore} receipts before it`,
              pass: receiptsBefore > 0,
            },
          ],
          notes: [`exit ${exit}`],
        };
      },
    }),
  );

// ---------------------------------------------------------------- SIGTERM under load

const sigtermUnderLoad = (mode: Mode) =>
  faultScenario(
    {
      id: `sigterm-${mode}`,
      title: `SIGTERM under load (graceful shutdown${mode === "scale" ? ", api and worker in turn" : ""})`,
      mode,
      quick: true,
    },
    (ctx, deployment, i) => {
      const role: Role = mode === "scale" && i % 2 === 1 ? "delivery" : "ingest";
      return {
        label: `term${i}`,
        rate: 300,
        count: 900,
        sinkDelayMs: () => Math.floor(ctx.random() * 30),
        faultWindow: [200, 2_500],
        fault: async () => {
          const started = performance.now();
          const exit = await deployment.stop(role, "SIGTERM");
          const tookMs = Math.round(performance.now() - started);
          await deployment.restart(role);
          return {
            checks: [
              {
                name: "graceful exit code",
                expected: "0 within the 20 s grace",
                observed: `${exit}`,
                pass: exit === 0,
              },
            ],
            notes: [`${role} stopped in ${tookMs} ms with exit ${exit}`],
          };
        },
      };
    },
  );

// ---------------------------------------------------------------- Redis outage

const redisOutage = (seconds: number) =>
  faultScenario(
    {
      id: `redis-down-${seconds}s`,
      title: `Redis stopped (kill -9) for ${seconds} s, then started on its AOF again`,
      mode: "scale",
      quick: seconds <= 5,
    },
    (_ctx, deployment, i) => {
      const redis = deployment.redis!;
      const outageMs = seconds * 1000;
      const rate = seconds > 10 ? 50 : 200;
      return {
        label: `redis${seconds}s${i}`,
        rate,
        // The load goes on for 15 s after Redis is back, so there is new work to see resuming.
        count: Math.round((rate * (outageMs + 16_500)) / 1000),
        faultWindow: [300, 1_500],
        fault: async (ledger) => {
          await redis.kill();
          const before = ledger.statuses();
          await sleep(outageMs);
          const during = ledger.statuses();
          const refusedWhileDown = (during["503"] ?? 0) - (before["503"] ?? 0);
          await redis.start();
          const backAt = performance.now();
          // Ingestion accepts again (a new 202) and workers resume (a new receipt) after Redis is back.
          const acceptedAtRestart = ledger.acceptedCount;
          const receiptsAtRestart = ledger.balance().receipts;
          let acceptingMs = Number.NaN;
          let resumedMs = Number.NaN;
          while (
            performance.now() - backAt < 20_000 &&
            (Number.isNaN(resumedMs) || Number.isNaN(acceptingMs))
          ) {
            if (Number.isNaN(acceptingMs) && ledger.acceptedCount > acceptedAtRestart)
              acceptingMs = performance.now() - backAt;
            if (ledger.balance().receipts > receiptsAtRestart) resumedMs = performance.now() - backAt;
            await sleep(25);
          }
          return {
            checks: [
              {
                name: "ingestion answers 503 while Redis is down",
                expected: "503s during the outage, no 202 that cannot be honoured",
                observed: `${refusedWhileDown} × 503`,
                pass: refusedWhileDown > 0,
              },
              {
                name: "ingestion accepts again after Redis is back",
                expected: "a 202 within 10 s",
                observed: Number.isFinite(acceptingMs) ? `${Math.round(acceptingMs)} ms` : "no 202 in 20 s",
                pass: acceptingMs <= 10_000,
              },
              {
                name: "deliveries resume within 10 s of Redis being back",
                expected: "≤ 10,000 ms",
                observed: Number.isFinite(resumedMs) ? `${Math.round(resumedMs)} ms` : "no receipt in 20 s",
                pass: resumedMs <= 10_000,
              },
            ],
          };
        },
      };
    },
  );

// ---------------------------------------------------------------- PostgreSQL backends terminated

const pgTerminate = faultScenario(
  {
    id: "pg-terminate-scale",
    title: "PostgreSQL backends of every Mitte process terminated (pg_terminate_backend)",
    mode: "scale",
    quick: true,
  },
  (_ctx, deployment, i) => ({
    label: `pgt${i}`,
    rate: 300,
    count: 900,
    faultWindow: [200, 2_500],
    fault: async () => {
      const ended = await (await pgAdmin()).terminateBackends(deployment.pgPrefix!);
      return {
        checks: [
          {
            name: "backends terminated",
            expected: "≥ 1 per repetition",
            observed: `${ended}`,
            pass: ended > 0,
          },
        ],
      };
    },
  }),
  (deployment) => {
    const alive = deployment
      .processes()
      .every((p) => p.child.exitCode === null && p.child.signalCode === null);
    return [
      {
        name: "processes stay up and reconnect",
        expected: "every api and worker process still running",
        observed: alive ? "all running" : "a process exited",
        pass: alive,
      },
    ];
  },
);

export const processFaultScenarios: Scenario[] = [
  kill9Ingest("embedded"),
  kill9Ingest("scale"),
  kill9Delivery("embedded"),
  kill9Delivery("scale"),
  sigtermUnderLoad("embedded"),
  sigtermUnderLoad("scale"),
  redisOutage(5),
  redisOutage(60),
  pgTerminate,
];
