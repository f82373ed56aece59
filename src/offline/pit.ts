/**
 * Point-in-time joins: for each entity row and view, the view's row of that entity with the latest event time
 * ≤ the row's time and ≥ time − ttl (ttl 0: no lower bound), ties broken by the latest created time.
 * One query; per view either an index probe per entity row or one hash join, whichever the source's indexes make
 * cheap (see `PitPlan`), so that a source without an index on its join keys costs a scan, not a scan per row.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { invalid } from "../errors.ts";
import type { KeyType } from "../registry/dtypes.ts";
import type { RegistrySnapshot } from "../registry/snapshot.ts";
import { canonicalKey, formatTimestampMicros, normalizeValue, parseTimestampMicros, ValueError } from "../values.ts";
import { cancellable } from "./cancel.ts";
import { type FeatureSelection, selectFeatures } from "./features.ts";
import { type ColumnType, createWriter, type OutColumn, type StreamFormat } from "./formats.ts";
import { castKey, ident, pgTextArray, qualifiedTable, rowsOf, sourceRelationText } from "./sql.ts";

export const ORD = "__larder_ord";
export const TS = "__larder_ts";

/** The join keys the selection needs, each with its entity's key type. */
export function requiredKeys(selection: FeatureSelection): Map<string, KeyType> {
  const keys = new Map<string, KeyType>();
  for (const { view } of selection.views) for (const e of view.entities) keys.set(e.joinKey, e.valueType);
  return keys;
}

/**
 * How one view is joined. `lateral`: a LEFT JOIN LATERAL … ORDER BY ts DESC, created DESC LIMIT 1 per entity row, one
 * index probe each when an index leads with the join keys, but a scan of the source per entity row without one.
 * `set`: one hash join of all entity rows with the source on the join keys, kept to ts ≤ the row's time (and the ttl),
 * then DISTINCT ON (entity row) ordered by ts DESC, created DESC: a scan of the source whatever its indexes.
 */
export type PitPlan = "lateral" | "set";
/** `auto`: per view, `lateral` when the source is a table with an index leading with the join keys, else `set`. */
export type PlanChoice = PitPlan | "auto";

/**
 * The join as one SELECT. `entities` is a relation aliased `e` with columns `__larder_ord` (row order),
 * `__larder_ts` (timestamptz) and one typed column per join key; `entityColumns` are the entity columns to pass
 * through to the output (already-quoted SQL), before the feature columns. `plans`: one per view (default lateral).
 */
export function pitQuery(
  selection: FeatureSelection,
  entities: SQL,
  entityColumns: string[],
  ordAlias = ORD,
  plans?: readonly PitPlan[],
): SQL {
  const [head, tail] = pitQueryParts(selection, entityColumns, ordAlias, plans);
  return sql`${sql.raw(head)}${entities}${sql.raw(tail)}`;
}

/** `pitQuery` over an entity relation given as text (a table or a query: no parameters), for cursors. */
export function pitQueryText(
  selection: FeatureSelection,
  entities: string,
  entityColumns: string[],
  ordAlias = ORD,
  plans?: readonly PitPlan[],
): string {
  const [head, tail] = pitQueryParts(selection, entityColumns, ordAlias, plans);
  return `${head}${entities}${tail}`;
}

function pitQueryParts(
  selection: FeatureSelection,
  entityColumns: string[],
  ordAlias: string,
  plans: readonly PitPlan[] = [],
): [string, string] {
  const selects: string[] = [`e.${ident(ORD)} AS ${ident(ordAlias)}`, ...entityColumns];
  const joins: string[] = [];
  const ctes: string[] = [];
  selection.views.forEach(({ view }, i) => {
    const alias = `v${i}`;
    const src = view.batchSource;
    const ts = `s.${ident(src.timestamp_field)}`;
    const conds = view.joinKeys.map((k) => `s.${ident(k)} = e.${ident(k)}`);
    conds.push(`${ts} <= e.${ident(TS)}`);
    if (view.ttlSeconds > 0) {
      if (!Number.isSafeInteger(view.ttlSeconds)) throw new Error(`bad ttl ${view.ttlSeconds}`);
      conds.push(`${ts} >= e.${ident(TS)} - interval '${view.ttlSeconds} seconds'`);
    }
    const order = [`${ts} DESC`];
    if (src.created_timestamp_field) order.push(`s.${ident(src.created_timestamp_field)} DESC NULLS LAST`);
    const cols = selection.columns.filter((c) => c.view === view);
    const inner = cols.map((c, j) => `s.${ident(c.feature.name)} AS ${ident(`f${j}`)}`);
    if ((plans[i] ?? "lateral") === "set") {
      // The same rule as the lateral probe: the first row in (ts DESC, created DESC NULLS LAST) order per entity row.
      ctes.push(
        `${alias} AS (SELECT DISTINCT ON (e.${ident(ORD)}) e.${ident(ORD)} AS o, ${inner.join(", ")} FROM e JOIN ${sourceRelationText(src, "s")} ON ${conds.join(" AND ")} ORDER BY e.${ident(ORD)}, ${order.join(", ")})`,
      );
      joins.push(`LEFT JOIN ${alias} ON ${alias}.o = e.${ident(ORD)}`);
    } else {
      joins.push(
        `LEFT JOIN LATERAL (SELECT ${inner.join(", ")} FROM ${sourceRelationText(src, "s")} WHERE ${conds.join(" AND ")} ORDER BY ${order.join(", ")} LIMIT 1) AS ${alias} ON true`,
      );
    }
    cols.forEach((c, j) => {
      selects.push(`${alias}.${ident(`f${j}`)} AS ${ident(c.name)}`);
    });
  });
  const tail = ` ${joins.join(" ")} ORDER BY e.${ident(ORD)}`;
  if (ctes.length === 0) return [`SELECT ${selects.join(", ")} FROM `, ` AS e${tail}`];
  // The entity rows are read by every set-joined view and by the outer select: computed once.
  return [`WITH e AS MATERIALIZED `, `, ${ctes.join(", ")} SELECT ${selects.join(", ")} FROM e${tail}`];
}

/**
 * The leading plain columns of each usable index of a table (btree, valid, not partial). Read from the catalogue: a
 * few milliseconds.
 */
export async function leadingIndexColumns(db: Pick<Db, "execute">, table: string): Promise<string[][]> {
  const rows = rowsOf<{ cols: (string | null)[] }>(
    await db.execute(sql`
      SELECT array_agg(a.attname::text ORDER BY k.n) AS cols
      FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_am am ON am.oid = c.relam AND am.amname = 'btree'
      CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
      WHERE i.indrelid = to_regclass(${qualifiedTable(table)}) AND i.indisvalid AND i.indpred IS NULL
      GROUP BY i.indexrelid`),
  );
  return rows.map(({ cols }) => {
    // an expression column ends the usable prefix
    const end = cols.indexOf(null);
    return (end < 0 ? cols : cols.slice(0, end)) as string[];
  });
}

/** Whether some index's leading columns are exactly the join keys (in any order): what the lateral probe needs. */
export function servesJoin(indexes: string[][], joinKeys: readonly string[]): boolean {
  const want = new Set(joinKeys);
  return indexes.some((cols) => cols.length >= want.size && cols.slice(0, want.size).every((c) => want.has(c)));
}

/** The plan of each view of a selection: forced, or chosen from what each source offers. */
export async function choosePlans(
  db: Pick<Db, "execute">,
  selection: FeatureSelection,
  choice: PlanChoice = "auto",
): Promise<PitPlan[]> {
  if (choice !== "auto") return selection.views.map(() => choice);
  const byTable = new Map<string, string[][]>();
  const plans: PitPlan[] = [];
  // one after the other: `db` may be a transaction's single connection
  for (const { view } of selection.views) {
    const table = view.batchSource.table;
    let indexes = table ? byTable.get(table) : undefined;
    if (table && !indexes) {
      indexes = await leadingIndexColumns(db, table);
      byTable.set(table, indexes);
    }
    plans.push(indexes && servesJoin(indexes, view.joinKeys) ? "lateral" : "set");
  }
  return plans;
}

export interface HistoricalRequest {
  entity_df: Record<string, unknown[]>;
  features?: string[] | undefined;
  feature_service?: string | undefined;
  full_feature_names?: boolean | undefined;
}

export interface HistoricalOptions {
  plan?: PlanChoice;
  /** Aborting it cancels the query in Postgres (the caller went away or ran out of time). */
  signal?: AbortSignal | undefined;
}

export const TIMESTAMP_COLUMN = "event_timestamp";

/** Checks the entity dataframe's shape (its columns, their lengths, no clash with a feature): every problem by path. */
function checkEntityDf(selection: FeatureSelection, df: Record<string, unknown[]>): { n: number } {
  const columns = Object.keys(df);
  if (!(TIMESTAMP_COLUMN in df))
    throw invalid(`entity_df needs an ${TIMESTAMP_COLUMN} column`, [
      { path: `entity_df.${TIMESTAMP_COLUMN}`, message: "missing" },
    ]);
  const keys = requiredKeys(selection);
  for (const k of keys.keys())
    if (!(k in df))
      throw invalid(`entity_df needs the join key column ${k}`, [{ path: `entity_df.${k}`, message: "missing" }]);
  const n = df[TIMESTAMP_COLUMN]!.length;
  for (const c of columns) {
    const col = df[c];
    if (!Array.isArray(col))
      throw invalid(`entity_df.${c} must be an array`, [{ path: `entity_df.${c}`, message: "not an array" }]);
    if (col.length !== n)
      throw invalid(
        `entity_df columns must have the same length: ${c} has ${col.length}, ${TIMESTAMP_COLUMN} has ${n}`,
        [{ path: `entity_df.${c}`, message: `length ${col.length}, expected ${n}` }],
      );
  }
  for (const out of selection.columns)
    if (out.name in df) throw invalid(`feature column ${out.name} clashes with an entity_df column of the same name`);
  return { n };
}

interface KeyArray {
  name: string;
  type: KeyType;
  values: (string | null)[];
}

/**
 * Rows [from, to) of a checked entity dataframe as the parameters of an `unnest`: timestamps as RFC 3339 UTC, keys in
 * their canonical text (null: no entity, the features come back null). A bad value is named by its row.
 */
function entityParams(
  selection: FeatureSelection,
  df: Record<string, unknown[]>,
  from: number,
  to: number,
): { ts: string[]; keyArrays: KeyArray[] } {
  const ts = new Array<string>(to - from);
  const times = df[TIMESTAMP_COLUMN]!;
  for (let i = from; i < to; i++) {
    try {
      const v = times[i];
      if (v === null || v === undefined) throw new ValueError("null is not a timestamp");
      ts[i - from] = formatTimestampMicros(parseTimestampMicros(v));
    } catch (e) {
      const msg = `entity_df.${TIMESTAMP_COLUMN}[${i}]: ${(e as Error).message}`;
      throw invalid(msg, [{ path: `entity_df.${TIMESTAMP_COLUMN}[${i}]`, message: (e as Error).message }]);
    }
  }
  const keyArrays = [...requiredKeys(selection)].map(([k, type]) => {
    const col = df[k]!;
    const values = new Array<string | null>(to - from);
    for (let i = from; i < to; i++) {
      const v = col[i];
      try {
        values[i - from] = v === null || v === undefined ? null : canonicalKey(type, v);
      } catch (e) {
        throw invalid(`entity_df.${k}[${i}]: ${(e as Error).message}`, [
          { path: `entity_df.${k}[${i}]`, message: (e as Error).message },
        ]);
      }
    }
    return { name: k, type, values };
  });
  return { ts, keyArrays };
}

/** The Postgres array type an entity key column is sent as (bytes: base64 texts, decoded in SQL). */
const KEY_ARRAY_TYPE: Record<KeyType, string> = {
  int64: "bigint[]",
  int32: "integer[]",
  string: "text[]",
  bytes: "text[]",
};

/** The Postgres type of an entity key column in the relation (bytes decoded). */
const KEY_COLUMN_TYPE: Record<KeyType, string> = { int64: "bigint", int32: "integer", string: "text", bytes: "bytea" };

/**
 * The entity rows of a request as a relation: `unnest(…) WITH ORDINALITY`, every array one parameter, already of its
 * column's type. (Text arrays cast per element inside the relation would be cast again in every view's lateral join,
 * the planner pulling the subquery up: ~20% of the join's time for three views.)
 */
function unnestRelation(ts: string[], keyArrays: KeyArray[], ordOffset = 0): SQL {
  const arrays = [
    sql`${pgTextArray(ts)}::timestamptz[]`,
    ...keyArrays.map((k) => sql`${pgTextArray(k.values)}::${sql.raw(KEY_ARRAY_TYPE[k.type])}`),
  ];
  const names = ["t", ...keyArrays.map((_, i) => `k${i}`), "o"];
  const cols = [
    `${ordOffset ? `u.o + ${Math.trunc(ordOffset)}` : "u.o"} AS ${ident(ORD)}`,
    `u.t AS ${ident(TS)}`,
    ...keyArrays.map((k, i) => `${k.type === "bytes" ? castKey(`u.k${i}`, k.type) : `u.k${i}`} AS ${ident(k.name)}`),
  ];
  return sql`(SELECT ${sql.raw(cols.join(", "))} FROM unnest(${sql.join(arrays, sql`, `)}) WITH ORDINALITY AS u(${sql.raw(names.join(", "))}))`;
}

/**
 * Entity rows per INSERT when a streamed request's rows are loaded into a table. Small, so that what a chunk holds
 * while its INSERT runs (its text, the driver's copy) is little: whatever is alive when the young generation is
 * collected moves to the old one and stays until a full collection, and a full collection is rare while the heap grows.
 */
const LOAD_CHUNK = 5_000;
let tempSeq = 0;

/**
 * Loads a checked entity dataframe into a temporary table (dropped at commit), a chunk at a time, each converted only
 * when it is sent: the request's rows are never held a second time whole, as converted text and as the one parameter
 * the driver serialises (for 1M rows, hundreds of MB). Answers the relation `pitQuery` reads.
 */
async function loadEntityRows(
  tx: Pick<Db, "execute">,
  selection: FeatureSelection,
  df: Record<string, unknown[]>,
  n: number,
): Promise<SQL> {
  const keys = [...requiredKeys(selection)];
  const table = `larder_entity_rows_${process.pid}_${++tempSeq}`;
  const cols = [
    `${ident(ORD)} bigint`,
    `${ident(TS)} timestamptz`,
    ...keys.map(([k, type]) => `${ident(k)} ${KEY_COLUMN_TYPE[type]}`),
  ];
  await tx.execute(sql.raw(`CREATE TEMP TABLE ${table} (${cols.join(", ")}) ON COMMIT DROP`));
  const insert = (from: number, to: number) => {
    const { ts, keyArrays } = entityParams(selection, df, from, to);
    return sql`INSERT INTO ${sql.raw(table)} SELECT * FROM ${unnestRelation(ts, keyArrays, from)} AS u`;
  };
  for (let from = 0; from < n; from += LOAD_CHUNK) await tx.execute(insert(from, Math.min(n, from + LOAD_CHUNK)));
  // temporary tables have no statistics until analysed: the join's plan needs the row count
  await tx.execute(sql.raw(`ANALYZE ${table}`));
  return sql.raw(`(SELECT * FROM ${table})`);
}

/** A passed-through entity column's type, from the values sent (it has no declared type). */
function inferredType(values: unknown[]): ColumnType {
  let kind: string | undefined;
  let integers = true;
  for (const v of values) {
    if (v === null || v === undefined) continue;
    const k = typeof v;
    if (kind !== undefined && kind !== k) return "json";
    kind = k;
    if (k === "number" && !Number.isSafeInteger(v)) integers = false;
  }
  if (kind === "number") return integers ? "int64" : "float64";
  if (kind === "boolean") return "bool";
  if (kind === "string" || kind === undefined) return "string";
  return "json";
}

/**
 * Rows per FETCH and per written batch of a streamed answer. Small for the same reason as LOAD_CHUNK: a FETCH's rows
 * arrive over several reads of the socket, and what is alive across them moves to the old generation. 1M entity rows
 * to Arrow (bench:offline), server peak RSS: 10,000 rows per batch 446 MB, 2,000 rows 331 MB (idle: ~150 MB).
 */
const STREAM_BATCH = 2_000;

export interface StreamOptions extends HistoricalOptions {
  format: StreamFormat;
  /** Rows per FETCH and per written batch (default STREAM_BATCH). */
  batchSize?: number;
  /** Called once the query is under way (its errors, such as a source that is gone, come before it). */
  onStart?: (columns: OutColumn[]) => void;
  write: (chunk: Uint8Array | string) => Promise<void>;
}

/**
 * `historicalFeatures` written batch by batch from a cursor: memory holds the request and one batch, never the
 * answer. Entity columns come back as sent, from the request, found by row number.
 */
export async function streamHistorical(
  db: Db,
  snap: RegistrySnapshot,
  req: HistoricalRequest,
  opts: StreamOptions,
): Promise<{ rows: number }> {
  const selection = selectFeatures(snap, req);
  const { n } = checkEntityDf(selection, req.entity_df);
  const keys = requiredKeys(selection);
  const entityNames = Object.keys(req.entity_df);
  const entityCols = entityNames.map((c) => req.entity_df[c]!);
  const columns: OutColumn[] = [
    ...entityNames.map((name, j) => ({
      name,
      type: name === TIMESTAMP_COLUMN ? ("timestamp" as const) : (keys.get(name) ?? inferredType(entityCols[j]!)),
    })),
    ...selection.columns.map((c) => ({ name: c.name, type: c.feature.dtype })),
  ];
  const writer = createWriter(opts.format, columns);
  const batchSize = opts.batchSize ?? STREAM_BATCH;
  return db.transaction(async (tx) => {
    await tx.execute(sql`SET LOCAL TIME ZONE 'UTC'`);
    return cancellable(db, tx, opts.signal, async () => {
      const plans = await choosePlans(tx, selection, opts.plan);
      if (n > 0) {
        const query = pitQuery(selection, await loadEntityRows(tx, selection, req.entity_df, n), [], ORD, plans);
        await tx.execute(sql`DECLARE larder_stream NO SCROLL CURSOR FOR ${query}`);
      }
      opts.onStart?.(columns);
      await opts.write(writer.header());
      // One batch's rows become the writer's bytes in one synchronous step, so that nothing but those bytes is alive
      // while the next FETCH or the client is awaited (see LOAD_CHUNK: what is alive then ends up in the old generation).
      const encode = (rows: Record<string, unknown>[]) => {
        const out: unknown[][] = columns.map(() => new Array(rows.length));
        rows.forEach((row, i) => {
          const at = Number(row[ORD]) - 1;
          for (let j = 0; j < entityCols.length; j++) out[j]![i] = entityCols[j]![at] ?? null;
          selection.columns.forEach((c, k) => {
            out[entityCols.length + k]![i] = featureValue(c, row[c.name]);
          });
        });
        return writer.batch(out, rows.length);
      };
      const fetch = async () => rowsOf(await tx.execute(sql.raw(`FETCH ${batchSize} FROM larder_stream`)));
      let done = 0;
      while (done < n) {
        opts.signal?.throwIfAborted();
        const rows = await fetch();
        if (rows.length === 0) break;
        done += rows.length;
        await opts.write(encode(rows.splice(0)));
      }
      await opts.write(writer.end());
      return { rows: done };
    });
  });
}

/** A feature value read from a source in its JSON form; a value that is not its dtype is the definition's fault. */
function featureValue(c: FeatureSelection["columns"][number], v: unknown): unknown {
  if (v === null || v === undefined) return null;
  try {
    return normalizeValue(c.feature.dtype, v);
  } catch (e) {
    throw invalid(
      `feature view ${c.view.name}: column ${c.feature.name} holds a value that is not ${c.feature.dtype}: ${(e as Error).message}`,
    );
  }
}

/** Point-in-time-correct training rows for a request's entity dataframe: `{ df }` with columns in request order. */
export async function historicalFeatures(
  db: Db,
  snap: RegistrySnapshot,
  req: HistoricalRequest,
  opts: HistoricalOptions = {},
): Promise<{ df: Record<string, unknown[]> }> {
  const selection = selectFeatures(snap, req);
  const { n } = checkEntityDf(selection, req.entity_df);
  const { ts, keyArrays } = entityParams(selection, req.entity_df, 0, n);
  const out: Record<string, unknown[]> = {};
  for (const [c, values] of Object.entries(req.entity_df)) out[c] = values;
  const featureCols = selection.columns.map((c) => ({ ...c, values: new Array<unknown>(n).fill(null) }));
  for (const c of featureCols) out[c.name] = c.values;
  if (n === 0) return { df: out };

  const rows = await db.transaction(async (tx) => {
    // Source columns without a zone are read as UTC, as request timestamps are.
    await tx.execute(sql`SET LOCAL TIME ZONE 'UTC'`);
    const plans = await choosePlans(tx, selection, opts.plan);
    const query = pitQuery(selection, unnestRelation(ts, keyArrays), [], ORD, plans);
    return cancellable(db, tx, opts.signal, async () => rowsOf(await tx.execute(query)));
  });
  for (const row of rows) {
    const i = Number(row[ORD]) - 1;
    for (const c of featureCols) c.values[i] = featureValue(c, row[c.name]);
  }
  return { df: out };
}
