import { type SQL, sql } from "drizzle-orm";
import type { PostgresSourceSpec } from "../registry/definitions.ts";

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
  if (src.table) return sql.raw(`${qualifiedTable(src.table)} AS ${ident(alias)}`);
  const q = (src.query ?? "").trim().replace(/;+\s*$/, "");
  return sql.raw(`(${q}) AS ${ident(alias)}`);
}
