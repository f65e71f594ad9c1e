import { CompiledQuery } from "kysely";
import { describe, expect, it } from "vitest";
import { combineStatements } from "./postgres-storage.js";

describe("combineStatements", () => {
  it("renumbers placeholders so they follow one another", () => {
    const combined = combineStatements([
      CompiledQuery.raw('insert into "a" ("x", "y") values ($1, $2)', [1, 2]),
      CompiledQuery.raw('update "b" set "z" = "z" + $1 where "id" = $2', [3, "b1"]),
    ]);
    expect(combined.sql).toBe(
      'with s0 as (insert into "a" ("x", "y") values ($1, $2)), s1 as (update "b" set "z" = "z" + $3 where "id" = $4) select 1',
    );
    expect(combined.parameters).toEqual([1, 2, 3, "b1"]);
  });

  it("refuses a statement whose placeholders do not match its parameters", () => {
    expect(() => combineStatements([CompiledQuery.raw('insert into "a" ("x") values (\'$9\')', [])])).toThrow(
      /refers to \$9/,
    );
  });
});
