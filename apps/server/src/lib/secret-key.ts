import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config.js";

/** Parses a 32-byte key given as 64 hex characters or base64/base64url. */
export function parseSecretKey(value: string): Buffer {
  const trimmed = value.trim();
  const key = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64");
  if (key.length !== 32) throw new Error("MITTE_SECRET_KEY must be 32 bytes (64 hex characters or base64)");
  return key;
}

/**
 * Embedded mode keeps its key beside the database so `npm start` needs no set-up. The file is created
 * once with mode 0600; losing it makes stored signing secrets unreadable, so back it up with the data.
 */
export function loadOrCreateSecretKeyFile(dataDir: string): Buffer {
  const path = join(dataDir, "secret.key");
  if (existsSync(path)) return parseSecretKey(readFileSync(path, "utf8"));
  // A database without its key was moved or restored without it: a new key would not open its secrets,
  // and writing one would leave the operator a file to delete before restoring the right one.
  if (existsSync(join(dataDir, "mitte.db"))) {
    throw new ConfigError(
      `${path} is missing beside an existing database: restore the secret.key it was created with, or set MITTE_SECRET_KEY.`,
    );
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, `${key.toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  return key;
}
