import { type SQL, sql } from "drizzle-orm";
import type { PostgresSourceSpec } from "../registry/definitions.ts";
import type { KeyType } from "../registry/dtypes.ts";

/** A safely quoted identifier; names were checked as identifiers already, quoting guards the rest. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qualifiedTable(table: string): string {
  return table.split(".").map(ident).join(".");
}

/** A source query must be one statement: a `;` inside would let a definition run arbitrary SQL. */
export function checkSourceQuery(query: string): string | undefined {
  const q = query.trim().replace(/;+\s*$/, "");
  if (q.includes(";")) return "query must be a single SELECT statement (no ';')";
  if (!/^(select|with|values|table)\b/i.test(q)) return "query must be a SELECT statement";
  return undefined;
}

/** The source as a relation usable after FROM: `"schema"."table"` or `(query) AS alias`. */
export function sourceRelation(src: PostgresSourceSpec, alias = "src"): SQL {
  return sql.raw(sourceRelationText(src, alias));
}

/** `sourceRelation` as text, for statements assembled as text (cursors, CREATE TABLE AS). */
export function sourceRelationText(src: PostgresSourceSpec, alias = "src"): string {
  if (src.table) return `${qualifiedTable(src.table)} AS ${ident(alias)}`;
  const q = (src.query ?? "").trim().replace(/;+\s*$/, "");
  return `(${q}) AS ${ident(alias)}`;
}

/** A Postgres array literal of texts (`{"a",NULL}`), sent as one parameter: works on node-postgres and PGlite alike. */
export function pgTextArray(values: readonly (string | null)[]): string {
  const parts = values.map((v) => (v === null ? "NULL" : `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`));
  return `{${parts.join(",")}}`;
}

/** SQL that turns a canonical key text into the entity's Postgres type (see `canonicalKey`). */
export function castKey(expr: string, type: KeyType): string {
  switch (type) {
    case "int64":
      return `(${expr})::bigint`;
    case "int32":
      return `(${expr})::integer`;
    case "string":
      return `(${expr})::text`;
    case "bytes":
      return `decode(${expr}, 'base64')`;
  }
}

/** Epoch microseconds of a timestamp column, exact (extract gives numeric from Postgres 14 on). */
export function epochMicros(expr: string): string {
  return `(extract(epoch from ${expr}) * 1000000)::bigint`;
}

/** A timestamp we formatted ourselves from a number, as a SQL literal: safe to inline (cursors take no parameters). */
export function timestampLiteral(iso: string): string {
  if (!/^[0-9T:.\-Z]+$/.test(iso)) throw new Error(`not a formatted timestamp: ${iso}`);
  return `'${iso}'::timestamptz`;
}

/** Rows of a `db.execute` result, whichever driver ran it. */
export function rowsOf<T = Record<string, unknown>>(res: unknown): T[] {
  return ((res as { rows?: T[] }).rows ?? (res as T[])) as T[];
}
