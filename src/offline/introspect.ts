import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { isConnectionError, pgMessage, postgresFailure } from "../db/errors.ts";
import type { ColumnTypes, SourceIntrospector } from "../registry/validate.ts";
import { checkSourceQuery, sourceRelation } from "./sql.ts";

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
