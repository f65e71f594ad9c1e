import { randomBytes, randomFillSync } from "node:crypto";
import { monotonicFactory } from "ulidx";
import type { Clock } from "./clock.js";

export type IdPrefix = "usr" | "key" | "ep" | "log" | "att" | "ses" | "ott" | "mail" | "ntf" | "evt";

/**
 * Prefixed, time-sortable ids (`log_01j…`). Sortable ids let list endpoints paginate newest-first on the
 * primary key alone; the monotonic factory keeps ids ordered within one millisecond.
 */
export type IdGenerator = (prefix: IdPrefix) => string;

/**
 * Cryptographic randomness for ULIDs, drawn 4 KiB at a time. ulidx's default asks the OS for one byte per
 * character (16 calls per id), which showed up as several percent of the hot path's CPU.
 */
export function pooledRandom(): () => number {
  const pool = new Uint32Array(1024);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    // [0, 1): ulidx maps it onto the 32-character alphabet with Math.floor(x * 32).
    return pool[next++]! / 0x1_0000_0000;
  };
}

export function createIdGenerator(clock: Clock): IdGenerator {
  const ulid = monotonicFactory(pooledRandom());
  return (prefix) => `${prefix}_${ulid(clock.now()).toLowerCase()}`;
}

const ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWER_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Uniform random string over `alphabet` (rejection sampling, so no modulo bias). */
export function randomString(length: number, alphabet = ALPHANUMERIC): string {
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit) out += alphabet[byte % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Endpoint slugs: `mt_` + 16 lowercase alphanumerics (~82 bits), safe in any URL path. */
export function newEndpointSlug(): string {
  return `mt_${randomString(16, LOWER_ALPHANUMERIC)}`;
}

/** API keys: `mk_` + 49 alphanumerics = 52 characters, as the product docs state (~290 bits). */
export const API_KEY_LENGTH = 52;
export function newApiKey(): string {
  return `mk_${randomString(API_KEY_LENGTH - 3)}`;
}

/** Signing secrets: `whsec_` + 32 random bytes, base64url. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`;
}
