import {
  ConfigError,
  createDeps,
  createServices,
  loadConfig,
  type Plan,
  type RunningMitte,
  startMitte,
} from "@mitte/server";
import { Command, InvalidArgumentError, Option } from "commander";

const program = new Command()
  .name("mitte")
  .description("Mitte webhook gateway")
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

function config(overrides: Record<string, string> = {}) {
  return loadConfig({ ...process.env, ...overrides });
}

/** Opens the configured database with the same services the server uses, for one admin command. */
async function withServices<T>(run: (services: ReturnType<typeof createServices>) => Promise<T>): Promise<T> {
  const deps = await createDeps({ ...config(), log: { level: "warn" } });
  try {
    return await run(createServices(deps));
  } finally {
    await deps.close({ graceMs: 0 });
  }
}

const planOption = () => new Option("--plan <plan>", "free or pro").choices(["free", "pro"]);

function email(value: string): string {
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) throw new InvalidArgumentError("not an email address");
  return value;
}

program
  .command("start")
  .description("start Mitte: API, ingestion and delivery in this process, or one role of a scale deployment")
  .addOption(
    new Option(
      "--role <role>",
      "all: everything; api: HTTP only; worker: delivery and periodic jobs (scale mode)",
    )
      .choices(["all", "api", "worker"])
      .env("MITTE_ROLE"),
  )
  .action(async (options: { role?: string }) => {
    let mitte: RunningMitte | undefined;
    let stopping: string | undefined;
    const shutDown = (running: RunningMitte, signal: string) => {
      running.deps.logger.info({ signal }, "shutting down");
      running.close().then(
        () => process.exit(0),
        (error: unknown) => {
          running.deps.logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal (Ctrl-C again) means now: what was not finished runs again at the next start.
        mitte?.deps.logger.warn({ signal }, "second signal: exiting without waiting");
        process.exit(1);
      }
      stopping = signal;
      // Caught while starting: the stop follows as soon as there is something to stop.
      if (mitte) shutDown(mitte, signal);
    };
    // Before starting: the server answers /healthz before startMitte returns, and a SIGTERM in between
    // must not kill it without a graceful stop.
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    mitte = await startMitte(config(options.role ? { MITTE_ROLE: options.role } : {}));
    if (stopping) shutDown(mitte, stopping);
  });

const user = program.command("user").description("manage users");

user
  .command("create")
  .description("create a user and print its first API key (shown once)")
  .requiredOption("--email <email>", "the user's email", email)
  .option("--name <name>", "display name")
  .addOption(planOption().default("free"))
  .option("--json", "print JSON")
  .action(async (options: { email: string; name?: string; plan: Plan; json?: boolean }) => {
    const result = await withServices((services) =>
      services.users.createUser({
        email: options.email,
        plan: options.plan,
        ...(options.name ? { name: options.name } : {}),
      }),
    );
    if (result.outcome === "email_taken") {
      console.error(
        options.json
          ? JSON.stringify({ error: { code: "conflict", message: "email already registered" } })
          : "A user with this email already exists.",
      );
      process.exitCode = 1;
      return;
    }
    if (options.json) {
      console.log(JSON.stringify({ userId: result.user.id, apiKey: result.apiKey }));
    } else {
      console.log(`Created user ${result.user.email} (${result.user.id}) on the ${result.user.plan} plan.`);
      console.log(`API key (shown once): ${result.apiKey}`);
    }
  });

user
  .command("set-plan")
  .description("change a user's plan")
  .requiredOption("--email <email>", "the user's email", email)
  // No default here: a forgotten --plan must not move anyone to Free.
  .addOption(planOption().makeOptionMandatory())
  .action(async (options: { email: string; plan: Plan }) => {
    const updated = await withServices((services) => services.users.setPlan(options.email, options.plan));
    if (!updated) {
      console.error("No user with this email.");
      process.exitCode = 1;
      return;
    }
    console.log(`${options.email} is now on the ${options.plan} plan.`);
  });

program
  .command("mail")
  .description("mail kept in the outbox when no RESEND_API_KEY is set")
  .command("list")
  .description("newest first: to, subject, text, links")
  .option("--limit <n>", "how many", (value) => Number.parseInt(value, 10), 20)
  .option("--json", "print JSON")
  .action(async (options: { limit: number; json?: boolean }) => {
    const mails = await withServices((services) => services.users.outbox(options.limit));
    if (options.json) {
      console.log(JSON.stringify(mails));
      return;
    }
    for (const mail of mails)
      console.log(`${mail.createdAt}  ${mail.to}  ${mail.subject}\n  ${mail.links.join("\n  ")}`);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
