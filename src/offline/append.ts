/**
 * Appending pushed rows to a push source's batch table (`to: offline | online_and_offline`).
 * Run inside the caller's transaction, so a failure leaves the table as it was.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { isConnectionError, pgCode, pgMessage } from "../db/errors.ts";
import { invalid } from "../errors.ts";
import type { PostgresSourceSpec } from "../registry/definitions.ts";
import { type Dtype, elementOf } from "../registry/dtypes.ts";
import { formatTimestampMicros } from "../values.ts";
import { ident, qualifiedTable } from "./sql.ts";

/** One column of rows to append; values already checked and in their canonical form. */
export type AppendColumn =
  | { name: string; kind: "key"; values: string[] }
  /** Epoch microseconds, or null. */
  | { name: string; kind: "timestamp"; values: (number | null)[] }
  | { name: string; kind: "feature"; dtype: Dtype; values: unknown[] };

type Executor = Pick<Db, "execute">;

/** Parameters per INSERT statement: well under Postgres' limit of 65535. */
const MAX_PARAMS = 30_000;

async function columnTypes(tx: Executor, table: string): Promise<Map<string, string>> {
  const res = (await tx.execute(sql`
    SELECT a.attname AS name, t.typname AS type
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = to_regclass(${qualifiedTable(table)}) AND a.attnum > 0 AND NOT a.attisdropped`)) as unknown as {
    rows: { name: string; type: string }[];
  };
  return new Map(res.rows.map((r) => [r.name, r.type]));
}

const isTimestampType = (t: string) => t === "timestamptz" || t === "timestamp" || t === "date";

/** A canonical feature value in the form the column's type accepts as a parameter. */
function converter(dtype: Dtype, type: string): (v: unknown) => unknown {
  if (type === "json" || type === "jsonb") return (v) => (v === null ? null : JSON.stringify(v));
  const el = elementOf(dtype);
  const one = (x: unknown): unknown => {
    if (x === null) return null;
    if (el === "bytes" && (type === "bytea" || type === "_bytea")) return Buffer.from(x as string, "base64");
    if (el === "unix_timestamp" && (isTimestampType(type) || isTimestampType(type.replace(/^_/, ""))))
      return formatTimestampMicros(Math.round((x as number) * 1_000_000));
    if (el === "json") return JSON.stringify(x);
    return x;
  };
  return (v) => (Array.isArray(v) ? v.map(one) : one(v));
}

/**
 * Inserts `n` rows into the source's table. The table's columns must include every column given (the registry
 * checked the views' columns against it); values that the column type refuses are a 400 naming the column.
 */
export async function appendRows(
  tx: Executor,
  source: PostgresSourceSpec,
  columns: AppendColumn[],
  n: number,
): Promise<void> {
  if (!source.table) throw invalid(`batch source ${source.name} is a query; rows can only be appended to a table`);
  if (n === 0 || columns.length === 0) return;
  const types = await columnTypes(tx, source.table);
  if (types.size === 0) throw invalid(`batch table ${source.table} of source ${source.name} does not exist`);
  const converted = columns.map((c) => {
    const type = types.get(c.name);
    if (type === undefined) throw invalid(`df.${c.name}: batch table ${source.table} has no column ${c.name}`);
    if (c.kind === "timestamp") {
      const numeric = !isTimestampType(type);
      return c.values.map((v) => (v === null ? null : numeric ? v / 1_000_000 : formatTimestampMicros(v)));
    }
    if (c.kind === "key") return type === "bytea" ? c.values.map((v) => Buffer.from(v, "base64")) : c.values;
    const conv = converter(c.dtype, type);
    return c.values.map(conv);
  });

  const head = sql.raw(
    `INSERT INTO ${qualifiedTable(source.table)} (${columns.map((c) => ident(c.name)).join(", ")}) VALUES `,
  );
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
  for (let start = 0; start < n; start += perStatement) {
    const end = Math.min(n, start + perStatement);
    const rows: SQL[] = [];
    for (let r = start; r < end; r++)
      rows.push(
        sql`(${sql.join(
          converted.map((col) => sql.param(col[r])),
          sql`, `,
        )})`,
      );
    try {
      await tx.execute(sql`${head}${sql.join(rows, sql`, `)}`);
    } catch (e) {
      if (isConnectionError(e)) throw e;
      const code = pgCode(e) ?? "";
      // data exceptions (22xxx), integrity (23xxx), undefined column (42703): the rows, not the server
      if (/^2[23]/.test(code) || code === "42703" || code === "42804")
        throw invalid(`rows cannot be appended to ${source.table}: ${pgMessage(e)}`);
      throw e;
    }
  }
}
