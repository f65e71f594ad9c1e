import { describe, expect, it } from "vitest";
import { isStorageUnavailable } from "./unavailable.js";

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe("isStorageUnavailable", () => {
  it.each([
    [withCode("terminating connection due to administrator command", "57P01"), true],
    [withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED"), true],
    [withCode("connection failure", "08006"), true],
    [new Error("Connection terminated unexpectedly"), true],
    [new Error("Client has encountered a connection error and is not queryable"), true],
    [withCode("database is locked", "SQLITE_BUSY"), true],
    [withCode('duplicate key value violates unique constraint "logs_pkey"', "23505"), false],
    [withCode('relation "logs" does not exist', "42P01"), false],
    [new TypeError("cannot read properties of undefined"), false],
    ["Connection terminated", false],
  ])("%s → %s", (error, expected) => {
    expect(isStorageUnavailable(error)).toBe(expected);
  });
});
