import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { isConnectionError, pgMessage, postgresFailure } from "../db/errors.ts";
import type { Definitions } from "../registry/definitions.ts";
import type { DefinitionsAdvisor, PlanWarning } from "../registry/service.ts";
import type { ColumnTypes, SourceIntrospector } from "../registry/validate.ts";
import { leadingIndexColumns, servesJoin } from "./pit.ts";
import { checkSourceQuery, ident, qualifiedTable, sourceRelation } from "./sql.ts";

interface FieldInfo {
  name: string;
  dataTypeID: number;
}

/** Reads a source's columns and types with a `LIMIT 0` select, read-only, so a definition can't change data. */
export function createIntrospector(db: Db): SourceIntrospector {
  return async (src) => {
    if (src.query) {
      const bad = checkSourceQuery(src.query);
      if (bad) return { error: bad };
    }
    try {
      const columns = await db.transaction(async (tx) => {
        await tx.execute(sql`SET TRANSACTION READ ONLY`);
        await tx.execute(sql`SET LOCAL statement_timeout = 10000`);
        const res = (await tx.execute(sql`SELECT * FROM ${sourceRelation(src)} LIMIT 0`)) as unknown as {
          fields: FieldInfo[];
        };
        const oids = [...new Set(res.fields.map((f) => f.dataTypeID))];
        const types = (await tx.execute(
          sql`SELECT oid::int AS oid, typname FROM pg_type WHERE oid = ANY(${`{${oids.join(",")}}`}::oid[])`,
        )) as unknown as { rows: { oid: number; typname: string }[] };
        const byOid = new Map(types.rows.map((r) => [Number(r.oid), r.typname]));
        const out: ColumnTypes = new Map();
        for (const f of res.fields) out.set(f.name, byOid.get(f.dataTypeID) ?? "unknown");
        return out;
      });
      return { columns };
    } catch (e) {
      // The database being down says nothing about the definitions: a 503, not a list of "bad" sources.
      if (isConnectionError(e)) throw postgresFailure(e) ?? e;
      const msg = pgMessage(e);
      return { error: src.table ? `table ${src.table} cannot be read: ${msg}` : `query cannot be run: ${msg}` };
    }
  };
}

/**
 * Warns about each view whose postgres table source has no index leading with the view's join keys: historical
 * retrieval then hash-joins the whole table instead of probing it per entity row. Query sources are not looked at
 * (their indexes are the tables' behind them). A source that cannot be read was reported by validation already.
 */
export function createIndexAdvisor(db: Db): DefinitionsAdvisor {
  return async (defs: Definitions) => {
    const joinKey = new Map(defs.entities.map((e) => [e.name, e.join_key]));
    const sources = new Map(defs.data_sources.map((s) => [s.name, s]));
    const indexes = new Map<string, string[][]>();
    const warnings: PlanWarning[] = [];
    for (const view of defs.feature_views) {
      let src = sources.get(view.source);
      if (src?.kind === "push") src = sources.get(src.batch_source);
      if (src?.kind !== "postgres" || !src.table) continue;
      const keys = view.entities.map((e) => joinKey.get(e)).filter((k): k is string => k !== undefined);
      if (keys.length !== view.entities.length) continue;
      let found = indexes.get(src.table);
      if (!found) {
        try {
          found = await db.transaction(async (tx) => {
            await tx.execute(sql`SET TRANSACTION READ ONLY`);
            return leadingIndexColumns(tx, src.table!);
          });
        } catch (e) {
          if (isConnectionError(e)) throw postgresFailure(e) ?? e;
          continue;
        }
        indexes.set(src.table, found);
      }
      if (servesJoin(found, keys)) continue;
      const columns = [...keys, src.timestamp_field].map(ident).join(", ");
      warnings.push({
        path: `feature_views.${view.name}`,
        message: `table ${src.table} (source ${src.name}) has no index whose leading columns are the join key${keys.length > 1 ? "s" : ""} ${keys.join(", ")}: historical retrieval will scan the table`,
        suggestion: `CREATE INDEX ON ${qualifiedTable(src.table)} (${columns})`,
      });
    }
    return warnings;
  };
}
