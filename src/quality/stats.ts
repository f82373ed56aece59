/**
 * Statistics of a feature view's values, computed inside Postgres (the data never comes through this process): over
 * the batch source, optionally in an event-time window [start, end), or over the rows a materialisation job loaded.
 * One scan for the counts and moments, one more for the histograms and top values.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { invalid } from "../errors.ts";
import { ident, rowsOf, sourceRelationText, timestampLiteral } from "../offline/sql.ts";
import { type Dtype, isList } from "../registry/dtypes.ts";
import type { CompiledView } from "../registry/snapshot.ts";
import { formatTimestampMicros, parseTimestampMicros } from "../values.ts";

export const HISTOGRAM_BUCKETS = 10;
export const TOP_VALUES = 10;

export interface HistogramBucket {
  /** Bounds of the bucket: [lower, upper), the last one [lower, upper]. */
  lower: number;
  upper: number;
  count: number;
}

export interface FeatureStats {
  name: string;
  dtype: Dtype;
  /** Rows considered. */
  count: number;
  /** Nulls among them. */
  null_count: number;
  /** Numeric dtypes only (else null). */
  min: number | null;
  max: number | null;
  mean: number | null;
  /** Sample standard deviation; null with fewer than two values. */
  stddev: number | null;
  /** Distinct non-null values. */
  distinct: number;
  /** Numeric dtypes: equal-width buckets from min to max (null otherwise). */
  histogram: HistogramBucket[] | null;
  /** Strings and booleans: the most frequent values, most frequent first (null otherwise). */
  top_values: { value: string | boolean; count: number }[] | null;
}

export interface ViewStats {
  feature_view: string;
  start_ts: string | null;
  end_ts: string | null;
  rows: number;
  features: FeatureStats[];
}

const NUMERIC = new Set<Dtype>(["int32", "int64", "float32", "float64"]);
const TOPS = new Set<Dtype>(["string", "bool"]);

/** A column of the relation stats are computed over: its SQL name, and the feature it holds. */
export interface StatsColumn {
  name: string;
  dtype: Dtype;
  column: string;
}

/** Bounds a histogram can be drawn between (a float column may hold Infinity or NaN). */
const finiteRange = (f: FeatureStats) => Number.isFinite(f.min) && Number.isFinite(f.max);

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Statistics of `columns` over `relation` (SQL text usable after FROM, aliased), every figure computed by Postgres. */
export async function statsOver(
  db: Db,
  relation: string,
  columns: StatsColumn[],
): Promise<{ rows: number; features: FeatureStats[] }> {
  const aggs: string[] = ["count(*) AS n"];
  columns.forEach((c, i) => {
    const col = ident(c.column);
    // json and lists have no equality of their own: their text does
    const distinct = c.dtype === "json" || isList(c.dtype) ? `${col}::text` : col;
    aggs.push(`count(${col}) AS nn${i}`, `count(DISTINCT ${distinct}) AS d${i}`);
    if (NUMERIC.has(c.dtype))
      aggs.push(
        `min(${col}) AS mn${i}`,
        `max(${col}) AS mx${i}`,
        `avg(${col}::double precision) AS av${i}`,
        `stddev_samp(${col}::double precision) AS sd${i}`,
      );
  });
  const first = rowsOf<Record<string, unknown>>(
    await db.execute(sql.raw(`SELECT ${aggs.join(", ")} FROM ${relation}`)),
  )[0]!;
  const rows = Number(first.n);
  const features: FeatureStats[] = columns.map((c, i) => ({
    name: c.name,
    dtype: c.dtype,
    count: rows,
    null_count: rows - Number(first[`nn${i}`]),
    min: num(first[`mn${i}`]),
    max: num(first[`mx${i}`]),
    mean: num(first[`av${i}`]),
    stddev: num(first[`sd${i}`]),
    distinct: Number(first[`d${i}`]),
    histogram: null,
    top_values: null,
  }));

  // histograms (bounds from the first scan) and top values: one statement, one branch per feature
  const parts: string[] = [];
  columns.forEach((c, i) => {
    const f = features[i]!;
    const col = ident(c.column);
    if (NUMERIC.has(c.dtype) && finiteRange(f) && f.min! < f.max!) {
      // clamped at both ends: a real's min/max arrive as their shortest decimal text (0.0001), which as a double is not
      // the value the column holds (9.99999974e-05), so the column's own min may fall below the first bucket's bound
      parts.push(
        `SELECT ${i} AS i, greatest(least(width_bucket(${col}::double precision, ${f.min}::double precision, ${f.max}::double precision, ${HISTOGRAM_BUCKETS}), ${HISTOGRAM_BUCKETS}), 1)::text AS v, count(*) AS n
           FROM ${relation} WHERE ${col} IS NOT NULL GROUP BY 2`,
      );
    } else if (TOPS.has(c.dtype)) {
      parts.push(
        `SELECT ${i} AS i, v, n FROM (SELECT ${col}::text AS v, count(*) AS n FROM ${relation} WHERE ${col} IS NOT NULL
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${TOP_VALUES}) AS t${i}`,
      );
    }
  });
  for (const c of features) {
    const { min, max } = c;
    if (NUMERIC.has(c.dtype) && min !== null && max !== null && finiteRange(c)) {
      const width = (max - min) / HISTOGRAM_BUCKETS;
      c.histogram =
        min < max
          ? Array.from({ length: HISTOGRAM_BUCKETS }, (_, b) => ({
              lower: min + width * b,
              upper: b === HISTOGRAM_BUCKETS - 1 ? max : min + width * (b + 1),
              count: 0,
            }))
          : [{ lower: min, upper: max, count: c.count - c.null_count }];
    }
    if (TOPS.has(c.dtype)) c.top_values = [];
  }
  if (parts.length > 0) {
    const rest = rowsOf<{ i: unknown; v: string; n: unknown }>(
      await db.execute(sql.raw(parts.map((p) => `(${p})`).join(" UNION ALL "))),
    );
    for (const r of rest) {
      const f = features[Number(r.i)]!;
      if (f.histogram) f.histogram[Number(r.v) - 1]!.count = Number(r.n);
      else f.top_values!.push({ value: f.dtype === "bool" ? r.v === "true" : r.v, count: Number(r.n) });
    }
    for (const f of features)
      f.top_values?.sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)));
  }
  return { rows, features };
}

function parseWindowTs(field: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  try {
    return parseTimestampMicros(v);
  } catch (e) {
    throw invalid(`${field}: ${(e as Error).message}`, [{ path: field, message: (e as Error).message }]);
  }
}

/** Statistics of a view's features over its batch source, in [start_ts, end_ts) of event time when given. */
export async function viewStats(
  db: Db,
  view: CompiledView,
  window: { start_ts?: string | undefined; end_ts?: string | undefined } = {},
): Promise<ViewStats> {
  const start = parseWindowTs("start_ts", window.start_ts);
  const end = parseWindowTs("end_ts", window.end_ts);
  if (start !== undefined && end !== undefined && start >= end)
    throw invalid("start_ts must be before end_ts", [{ path: "start_ts", message: "not before end_ts" }]);
  const ts = `s.${ident(view.batchSource.timestamp_field)}`;
  const where: string[] = [];
  if (start !== undefined) where.push(`${ts} >= ${timestampLiteral(formatTimestampMicros(start))}`);
  if (end !== undefined) where.push(`${ts} < ${timestampLiteral(formatTimestampMicros(end))}`);
  const relation = `(SELECT * FROM ${sourceRelationText(view.batchSource, "s")}${where.length ? ` WHERE ${where.join(" AND ")}` : ""}) AS w`;
  const { rows, features } = await statsOver(
    db,
    relation,
    view.features.map((f) => ({ name: f.name, dtype: f.dtype, column: f.name })),
  );
  return {
    feature_view: view.name,
    start_ts: start === undefined ? null : formatTimestampMicros(start),
    end_ts: end === undefined ? null : formatTimestampMicros(end),
    rows,
    features,
  };
}
