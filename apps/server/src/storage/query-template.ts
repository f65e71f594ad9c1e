import type { Compilable, CompiledQuery } from "kysely";

/**
 * A hot write statement whose SQL Kysely compiles once per shape and that is then reused with new
 * parameters. Group commit builds such statements for every batch; letting Kysely parse and compile
 * each of them again cost about a tenth of the main thread in ingestion and in delivery.
 *
 * Kysely stays the only SQL generator: the first statement of each shape is compiled by `build`, and
 * its parameters are checked against `parameters(args)`. Should Kysely ever order them differently,
 * the check fails and statements of that shape keep going through Kysely.
 */
export class QueryTemplate<Args> {
  readonly #templates = new Map<string | number, { sql: string; query: CompiledQuery["query"] } | null>();

  constructor(
    private readonly spec: {
      /** The statement, e.g. `(rows) => db.insertInto("t").values(rows)`. */
      build: (args: Args) => Compilable;
      /** What makes the SQL text differ (e.g. the row count); equal shapes give equal SQL. */
      shape: (args: Args) => string | number;
      /** The parameters in the order of the compiled SQL's placeholders. */
      parameters: (args: Args) => unknown[];
    },
  ) {}

  compile(args: Args): CompiledQuery {
    const { spec } = this;
    const shape = spec.shape(args);
    const template = this.#templates.get(shape);
    // A shape whose parameter order did not check out goes through Kysely every time.
    if (template === null) return spec.build(args).compile();
    const parameters = spec.parameters(args);
    if (template) return { sql: template.sql, query: template.query, parameters, queryId: QUERY_ID };
    const compiled = spec.build(args).compile();
    const same =
      compiled.parameters.length === parameters.length &&
      compiled.parameters.every((value, index) => value === parameters[index]);
    this.#templates.set(shape, same ? { sql: compiled.sql, query: compiled.query } : null);
    return compiled;
  }

  /** Shapes whose SQL is reused (tests check that the fast path is taken). */
  get reusedShapes(): number {
    let count = 0;
    for (const template of this.#templates.values()) if (template) count++;
    return count;
  }
}

/**
 * A multi-row INSERT. Rows go into statements of power-of-two sizes up to `maxRows` (a batch of 25 is
 * 16 + 8 + 1 rows), so a table has a handful of statement shapes rather than one per batch size: SQLite
 * keeps every prepared statement, and 200 shapes of a 21-column insert held about 38 MB.
 */
export class InsertTemplate<Row extends object> {
  readonly #template: QueryTemplate<Row[]>;
  readonly #maxRows: number;

  constructor(
    build: (rows: Row[]) => Compilable,
    /** Every row has exactly these keys; parameters follow this order, row by row. */
    columns: readonly (keyof Row & string)[],
    /** Rows per statement at most (rounded down to a power of two), below SQLite's bound-parameter limit. */
    maxRows: number,
  ) {
    this.#maxRows = 2 ** Math.floor(Math.log2(maxRows));
    this.#template = new QueryTemplate<Row[]>({
      build,
      shape: (rows) => rows.length,
      parameters: (rows) => {
        const parameters = new Array<unknown>(rows.length * columns.length);
        let index = 0;
        for (const row of rows) for (const column of columns) parameters[index++] = row[column];
        return parameters;
      },
    });
  }

  compile(rows: readonly Row[]): CompiledQuery[] {
    const queries: CompiledQuery[] = [];
    let start = 0;
    for (const size of powerOfTwoChunks(rows.length, this.#maxRows)) {
      queries.push(this.#template.compile(rows.slice(start, start + size)));
      start += size;
    }
    return queries;
  }

  get reusedShapes(): number {
    return this.#template.reusedShapes;
  }
}

/** `n` as a sum of powers of two, each at most `max` (itself a power of two), largest first. */
export function powerOfTwoChunks(n: number, max: number): number[] {
  const sizes: number[] = [];
  let left = n;
  while (left >= max) {
    sizes.push(max);
    left -= max;
  }
  for (let size = max / 2; size >= 1; size /= 2) {
    if (left >= size) {
      sizes.push(size);
      left -= size;
    }
  }
  return sizes;
}

/**
 * An `in (…)` list padded to a power-of-two length by repeating its last value, which changes no result,
 * so that statements over lists of any length share a few shapes (see InsertTemplate).
 */
export function padToPowerOfTwo<T>(values: readonly T[]): T[] {
  if (values.length === 0) return [];
  const padded = [...values];
  const length = 2 ** Math.ceil(Math.log2(values.length));
  const last = values[values.length - 1]!;
  while (padded.length < length) padded.push(last);
  return padded;
}

/**
 * The values of a long `in (…)` list as padded lists of at most `max` (a power of two) values each, one per
 * statement: every list the statements see has a power-of-two length.
 */
export function paddedInLists<T>(values: readonly T[], max: number): T[][] {
  const lists: T[][] = [];
  for (let start = 0; start < values.length; start += max) {
    lists.push(padToPowerOfTwo(values.slice(start, start + max)));
  }
  return lists;
}

/** Kysely's query ids correlate plugin hooks; Mitte registers no plugins, so one shared id is enough. */
const QUERY_ID = { queryId: "query-template" } as CompiledQuery["queryId"];
