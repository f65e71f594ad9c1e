import { type Logger, pino } from "pino";

export type { Logger } from "pino";

export function createLogger(level: string): Logger {
  return pino({
    level,
    // Credentials never reach the logs, whichever object carries them.
    redact: {
      paths: [
        "req.headers.authorization",
        "req.headers.cookie",
        "headers.authorization",
        "*.apiKey",
        "*.password",
        // Mail links carry sign-in tokens; nothing logs them now, and nothing should by accident.
        "links",
        "*.links",
        "*.token",
        "*.signingSecret",
      ],
      censor: "[redacted]",
    },
  });
}
