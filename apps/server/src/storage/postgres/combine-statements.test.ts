import { CompiledQuery } from "kysely";
import { describe, expect, it } from "vitest";
import { CombinedStatements, combineStatements } from "./postgres-storage.js";

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

describe("CombinedStatements", () => {
  const insert = (x: number, y: number) =>
    CompiledQuery.raw('insert into "a" ("x", "y") values ($1, $2)', [x, y]);
  const update = (z: number) => CompiledQuery.raw('update "b" set "z" = $1', [z]);

  it("gives what combineStatements gives, under one name per shape, with each commit's parameters", () => {
    const combined = new CombinedStatements();
    const first = combined.combine([insert(1, 2), update(3)]);
    const second = combined.combine([insert(4, 5), update(6)]);
    const other = combined.combine([update(7), insert(8, 9)]);
    expect(first.query.sql).toBe(combineStatements([insert(1, 2), update(3)]).sql);
    expect(second.query.sql).toBe(first.query.sql);
    expect(second.query.parameters).toEqual([4, 5, 6]);
    expect(second.name).toBe(first.name);
    expect(other.name).not.toBe(first.name);
    expect(other.query.sql).toBe(combineStatements([update(7), insert(8, 9)]).sql);
    expect(other.query.parameters).toEqual([7, 8, 9]);
  });

  it("still refuses a statement whose parameters do not match its text, even after its shape is known", () => {
    const combined = new CombinedStatements();
    combined.combine([insert(1, 2), update(3)]);
    const short = CompiledQuery.raw('insert into "a" ("x", "y") values ($1, $2)', [1]);
    expect(() => combined.combine([short, update(3)])).toThrow(/refers to \$2/);
  });

  it("starts over past its bound and never gives one name to two texts", () => {
    const combined = new CombinedStatements(2, 2);
    const names = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (let n = 1; n <= 3; n++) {
        const queries = Array.from({ length: n }, (_, i) => update(i));
        const { name, query } = combined.combine(queries);
        expect(query.sql).toBe(combineStatements(queries).sql);
        if (name === undefined) continue;
        expect(names.get(name) ?? query.sql).toBe(query.sql);
        names.set(name, query.sql);
      }
    }
  });

  it("names at most maxNames texts and keeps a text's name after the shape cache starts over", () => {
    const combined = new CombinedStatements(1, 2);
    const shapes = [1, 2, 3].map((n) => Array.from({ length: n }, (_, i) => update(i)));
    const first = shapes.map((queries) => combined.combine(queries).name);
    expect(first[0]).toBeDefined();
    expect(first[1]).toBeDefined();
    expect(first[2]).toBeUndefined();
    const again = shapes.map((queries) => combined.combine(queries).name);
    expect(again).toEqual(first);
  });
});
