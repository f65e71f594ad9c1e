/**
 * The shape every fault-lab scenario reports in, and the context the runner hands it. A scenario repeats its
 * fault `repetitions` times at random moments; each repetition's books (ledger) must balance or the
 * scenario fails. Checks that are not about lost webhooks (status codes, memory, nothing stored) are listed
 * as `checks`, each with what was expected and what was observed.
 */
import type { LedgerBalance } from "./ledger.js";

export type Mode = "embedded" | "scale";

export interface LabContext {
  /** true for `npm run test:faults:quick`: fewer repetitions, shorter outages. */
  quick: boolean;
  /** Seeded random source, so a failing run can be repeated with LAB_SEED. */
  random: () => number;
  log: (line: string) => void;
}

export interface Check {
  name: string;
  expected: string;
  observed: string;
  pass: boolean;
}

export interface ScenarioResult {
  /** Stable id, e.g. `kill9-ingest-embedded`. */
  id: string;
  title: string;
  mode: Mode | "both";
  repetitions: number;
  /** Totals over all repetitions (0 where the scenario sends no tracked webhooks). */
  sent: number;
  accepted: number;
  lost: number;
  duplicates: number;
  checks: Check[];
  pass: boolean;
  durationMs: number;
  notes: string[];
}

export interface Scenario {
  id: string;
  title: string;
  mode: Mode | "both";
  /** Runs in `test:faults:quick` too (with ctx.quick = true). */
  quick: boolean;
  run(ctx: LabContext): Promise<Omit<ScenarioResult, "id" | "title" | "mode" | "pass" | "durationMs">>;
}

/** Folds per-repetition ledger balances into a scenario's totals and one books-balance check per repetition. */
export function foldBalances(balances: readonly LedgerBalance[]): {
  sent: number;
  accepted: number;
  lost: number;
  duplicates: number;
  checks: Check[];
} {
  const checks: Check[] = [];
  let sent = 0;
  let accepted = 0;
  let lost = 0;
  let duplicates = 0;
  balances.forEach((balance, index) => {
    sent += balance.sent;
    accepted += balance.accepted;
    lost += balance.lost.length;
    duplicates += balance.duplicates;
    if (!balance.balanced) {
      checks.push({
        name: `repetition ${index + 1}: books balance`,
        expected: "every 202 received, no rejected id received, signatures and bodies intact",
        observed: balance.problems.join("; "),
        pass: false,
      });
    }
  });
  checks.unshift({
    name: "books balance in every repetition",
    expected: `${balances.length} of ${balances.length}`,
    observed: `${balances.filter((b) => b.balanced).length} of ${balances.length}`,
    pass: balances.every((b) => b.balanced),
  });
  return { sent, accepted, lost, duplicates, checks };
}
