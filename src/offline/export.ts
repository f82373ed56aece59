/**
 * Training sets too large for an HTTP answer: the point-in-time join over entity rows from a SQL query or a CSV
 * file, written into a Postgres table (CREATE TABLE … AS: the data never leaves Postgres) or streamed to CSV
 * through a cursor. Memory holds one batch, never the whole set.
 */
import { once } from "node:events";
import type { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { conflict, invalid } from "../errors.ts";
import { TableName } from "../registry/definitions.ts";
import { formatTimestampMicros, normalizeValue, parseTimestampMicros } from "../values.ts";
import { cancellable } from "./cancel.ts";
import { parseCsv } from "./csv.ts";
import type { FeatureSelection } from "./features.ts";
import { type ColumnType, createWriter, type OutColumn, type StreamFormat } from "./formats.ts";
import { choosePlans, ORD, type PlanChoice, pitQuery, pitQueryText, requiredKeys, TS } from "./pit.ts";
import { castKey, checkSourceQuery, ident, pgTextArray, qualifiedTable, rowsOf } from "./sql.ts";

export type EntitySource = { sql: string } | { csv: AsyncIterable<string | Buffer> };

export interface ExportOptions {
  selection: FeatureSelection;
  entities: EntitySource;
  /** The entity rows' time column (default event_timestamp). */
  timestampColumn?: string;
  /** Write into this new table (table or schema.table); an existing one is a conflict unless `replace`. */
  into?: string;
  /** Replace the `into` table when it exists (dropped in the same transaction: a failed export leaves it as it was). */
  replace?: boolean;
  /** Or stream the rows here, as `format` (default csv). */
  out?: Writable;
  format?: StreamFormat;
  batchSize?: number;
  /** How each view is joined (default: chosen from the sources' indexes). */
  plan?: PlanChoice;
  /** Aborting it (Ctrl-C) cancels the running statement in Postgres and ends the export. */
  signal?: AbortSignal;
  onProgress?: (p: { phase: "loading" | "joining" | "writing"; done: number; total: number | undefined }) => void;
}

let tempSeq = 0;

function requireColumns(selection: FeatureSelection, columns: string[], tsColumn: string, where: string) {
  const missing = [tsColumn, ...requiredKeys(selection).keys()].filter((c) => !columns.includes(c));
  if (missing.length) throw invalid(`${where} lacks the column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
  for (const c of selection.columns)
    if (columns.includes(c.name))
      throw invalid(`feature column ${c.name} clashes with an entity column of the same name`);
}

/** Postgres type names of entity columns (from the relation's description) as output column types. */
const PG_COLUMN_TYPE: Record<string, ColumnType> = {
  int2: "int32",
  int4: "int32",
  int8: "int64",
  float4: "float32",
  float8: "float64",
  bool: "bool",
  text: "string",
  varchar: "string",
  bpchar: "string",
  bytea: "bytes",
  timestamptz: "timestamp",
  timestamp: "timestamp",
  json: "json",
  jsonb: "json",
};

async function entityColumnTypes(tx: Pick<Db, "execute">, relation: string, columns: string[]): Promise<ColumnType[]> {
  const probe = (await tx.execute(sql.raw(`SELECT * FROM ${relation} AS e LIMIT 0`))) as unknown as {
    fields: { name: string; dataTypeID: number }[];
  };
  const oids = probe.fields.map((f) => f.dataTypeID);
  const names = new Map(
    rowsOf<{ oid: number; typname: string }>(
      await tx.execute(
        sql`SELECT oid::int AS oid, typname FROM pg_type WHERE oid = ANY(${`{${oids.join(",")}}`}::oid[])`,
      ),
    ).map((r) => [Number(r.oid), r.typname]),
  );
  const typeOf = new Map(probe.fields.map((f) => [f.name, PG_COLUMN_TYPE[names.get(f.dataTypeID) ?? ""] ?? "string"]));
  return columns.map((c) => typeOf.get(c) ?? "string");
}

export async function exportHistorical(db: Db, opts: ExportOptions): Promise<{ rows: number }> {
  const { selection } = opts;
  const tsColumn = opts.timestampColumn ?? "event_timestamp";
  const batchSize = opts.batchSize ?? 10_000;
  const keys = requiredKeys(selection);
  if ((opts.into === undefined) === (opts.out === undefined))
    throw invalid("give exactly one of an output table or an output file");
  if (opts.into !== undefined && !TableName.safeParse(opts.into).success)
    throw invalid(`output table ${opts.into}: must be table or schema.table`);
  const progress = opts.onProgress ?? (() => {});

  return db.transaction(async (tx) => {
    await tx.execute(sql`SET LOCAL TIME ZONE 'UTC'`);
    if (opts.into !== undefined) {
      // before the work, not after it: the join may take minutes
      const found = rowsOf<{ found: boolean }>(
        await tx.execute(sql`SELECT to_regclass(${qualifiedTable(opts.into)}) IS NOT NULL AS found`),
      )[0]?.found;
      if (found && !opts.replace) throw conflict(`table ${opts.into} already exists`);
      if (found) await tx.execute(sql.raw(`DROP TABLE ${qualifiedTable(opts.into)}`));
    }
    return cancellable(db, tx, opts.signal, async () => {
      let relation: string;
      let columns: string[];
      if ("sql" in opts.entities) {
        const q = opts.entities.sql.trim().replace(/;+\s*$/, "");
        const bad = checkSourceQuery(q);
        if (bad) throw invalid(`entities query: ${bad}`);
        const probe = (await tx.execute(sql.raw(`SELECT * FROM (${q}) AS q LIMIT 0`))) as unknown as {
          fields: { name: string }[];
        };
        columns = probe.fields.map((f) => f.name);
        requireColumns(selection, columns, tsColumn, "the entities query");
        const cols = columns.map((c) => {
          const type = keys.get(c);
          return type && type !== "bytes" ? `${castKey(`q.${ident(c)}`, type)} AS ${ident(c)}` : `q.${ident(c)}`;
        });
        relation = `(SELECT ${cols.join(", ")}, row_number() OVER () AS ${ident(ORD)}, (q.${ident(tsColumn)})::timestamptz AS ${ident(TS)} FROM (${q}) AS q)`;
      } else {
        const rows = parseCsv(opts.entities.csv);
        const header = await rows.next();
        if (header.done) throw invalid("the entities CSV is empty");
        columns = header.value.map((c) => c.trim());
        if (new Set(columns).size !== columns.length) throw invalid("the entities CSV repeats a column name");
        requireColumns(selection, columns, tsColumn, "the entities CSV");
        const table = `larder_entities_${process.pid}_${++tempSeq}`;
        await tx.execute(
          sql.raw(
            `CREATE TEMP TABLE ${table} (${ident(ORD)} bigint, ${columns.map((c) => `${ident(c)} text`).join(", ")}) ON COMMIT DROP`,
          ),
        );
        let n = 0;
        let batch: string[][] = [];
        const flush = async () => {
          if (batch.length === 0) return;
          const ords = batch.map((_, i) => String(n - batch.length + i + 1));
          const arrays = [sql`${pgTextArray(ords)}::bigint[]`];
          for (let j = 0; j < columns.length; j++)
            arrays.push(
              sql`${pgTextArray(batch.map((r) => (r[j] === undefined || r[j] === "" ? null : r[j]!)))}::text[]`,
            );
          await tx.execute(sql`INSERT INTO ${sql.raw(table)} SELECT * FROM unnest(${sql.join(arrays, sql`, `)})`);
          batch = [];
          progress({ phase: "loading", done: n, total: undefined });
        };
        for await (const r of rows) {
          if (r.length === 1 && r[0] === "") continue; // a blank line
          if (r.length !== columns.length)
            throw invalid(`entities CSV line ${n + 2}: ${r.length} fields, the header has ${columns.length}`);
          batch.push(r);
          n++;
          if (batch.length >= batchSize) await flush();
        }
        await flush();
        await tx.execute(sql.raw(`ANALYZE ${table}`));
        const cols = columns.map((c) => {
          const type = keys.get(c);
          if (type) return `${castKey(ident(c), type)} AS ${ident(c)}`;
          if (c === tsColumn) return `${ident(c)}::timestamptz AS ${ident(c)}`;
          return ident(c);
        });
        relation = `(SELECT ${ident(ORD)}, ${cols.join(", ")}, ${ident(tsColumn)}::timestamptz AS ${ident(TS)} FROM ${table})`;
      }

      const total = Number(
        rowsOf<{ n: unknown }>(await tx.execute(sql.raw(`SELECT count(*) AS n FROM ${relation} AS e`)))[0]?.n ?? 0,
      );
      const entityColumns = columns.map((c) => `e.${ident(c)}`);
      const plans = await choosePlans(tx, selection, opts.plan);

      if (opts.into !== undefined) {
        progress({ phase: "joining", done: 0, total });
        const query = pitQuery(selection, sql.raw(relation), entityColumns, "entity_row", plans);
        await tx.execute(sql`CREATE TABLE ${sql.raw(qualifiedTable(opts.into))} AS ${query}`);
        progress({ phase: "joining", done: total, total });
        return { rows: total };
      }

      const out = opts.out!;
      const write = async (chunk: string | Uint8Array) => {
        if (chunk.length > 0 && !out.write(chunk)) await once(out, "drain");
      };
      const cursor = `larder_hist_${process.pid}_${++tempSeq}`;
      // no parameters (the entity rows are in a table or the user's query), so the text can back a cursor
      await tx.execute(
        sql.raw(
          `DECLARE ${cursor} NO SCROLL CURSOR FOR ${pitQueryText(selection, relation, entityColumns, ORD, plans)}`,
        ),
      );
      const types = await entityColumnTypes(tx, relation, columns);
      const outColumns: OutColumn[] = [
        ...columns.map((name, j) => ({ name, type: keys.get(name) ?? types[j]! })),
        ...selection.columns.map((c) => ({ name: c.name, type: c.feature.dtype })),
      ];
      const writer = createWriter(opts.format ?? "csv", outColumns);
      await write(writer.header());
      let done = 0;
      for (;;) {
        opts.signal?.throwIfAborted();
        const rows = rowsOf(await tx.execute(sql.raw(`FETCH ${batchSize} FROM ${cursor}`)));
        if (rows.length === 0) break;
        const batch: unknown[][] = [
          ...columns.map((c, j) =>
            // the driver hands instants back as Postgres' text: written as RFC 3339 UTC, as everywhere else
            outColumns[j]!.type === "timestamp"
              ? rows.map((r) => (r[c] == null ? null : formatTimestampMicros(parseTimestampMicros(r[c]))))
              : rows.map((r) => r[c] ?? null),
          ),
          ...selection.columns.map((c) => rows.map((r) => normalizeValue(c.feature.dtype, r[c.name]))),
        ];
        await write(writer.batch(batch, rows.length));
        done += rows.length;
        progress({ phase: "writing", done, total });
      }
      await write(writer.end());
      await tx.execute(sql.raw(`CLOSE ${cursor}`));
      return { rows: done };
    });
  });
}
