/**
 * Statistics of a feature view's values, computed inside Postgres (the data never comes through this process): over
 * the batch source, optionally in an event-time window [start, end), or over the rows a materialisation job read.
 * One statement: the rows are read once, then counted, measured, bucketed and ranked.
 */
import { sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../db/client.ts";
import { invalid } from "../errors.ts";
import { ident, rowsOf, sourceRelationText, timestampLiteral } from "../offline/sql.ts";
import { type Dtype, isList } from "../registry/dtypes.ts";
import type { CompiledView } from "../registry/snapshot.ts";
import { formatTimestampMicros, parseTimestampMicros } from "../values.ts";

export const HISTOGRAM_BUCKETS = 10;
export const TOP_VALUES = 10;

export const HistogramBucket = z
  .object({ lower: z.number(), upper: z.number(), count: z.number().int() })
  .describe("[lower, upper), the last bucket [lower, upper]");
export type HistogramBucket = z.infer<typeof HistogramBucket>;

/** One feature's figures: the one definition (the stats endpoint and the job record both answer it). */
export const FeatureStats = z.object({
  name: z.string(),
  dtype: z.string(),
  count: z.number().int().describe("rows considered"),
  null_count: z.number().int().describe("nulls among them"),
  min: z.number().nullable().describe("numeric dtypes only"),
  max: z.number().nullable(),
  mean: z.number().nullable(),
  stddev: z.number().nullable().describe("sample standard deviation; null with fewer than two values"),
  distinct: z.number().int().describe("distinct non-null values (counted exactly)"),
  histogram: z
    .array(HistogramBucket)
    .nullable()
    .describe(`numeric dtypes: ${HISTOGRAM_BUCKETS} equal-width buckets from min to max`),
  top_values: z
    .array(z.object({ value: z.union([z.string(), z.boolean()]), count: z.number().int() }))
    .nullable()
    .describe(`strings and booleans: the ${TOP_VALUES} most frequent values, most frequent first`),
});
export type FeatureStats = z.infer<typeof FeatureStats>;

/** Figures of a set of rows: how many, and each feature's. */
export const RowStats = z.object({ rows: z.number().int(), features: z.array(FeatureStats) });
export type RowStats = z.infer<typeof RowStats>;

export interface ViewStats extends RowStats {
  feature_view: string;
  start_ts: string | null;
  end_ts: string | null;
}

const NUMERIC = new Set<string>(["int32", "int64", "float32", "float64"]);
const TOPS = new Set<string>(["string", "bool"]);

/** A column of the relation stats are computed over: its SQL name, and the feature it holds. */
export interface StatsColumn {
  name: string;
  dtype: Dtype;
  column: string;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * Statistics of `columns` over `relation` (SQL text usable after FROM, aliased), every figure computed by Postgres in
 * one statement: the relation is read once (a materialised CTE when histograms or top values need a second look at
 * it), which matters when it is a materialisation's DISTINCT ON query rather than a table.
 */
export async function statsOver(db: Pick<Db, "execute">, relation: string, columns: StatsColumn[]): Promise<RowStats> {
  const aggs: string[] = ["count(*) AS n"];
  const parts: string[] = [];
  columns.forEach((c, i) => {
    const col = ident(c.column);
    // json and lists have no equality of their own: their text does
    const distinct = c.dtype === "json" || isList(c.dtype) ? `${col}::text` : col;
    aggs.push(`count(${col}) AS nn${i}`, `count(DISTINCT ${distinct}) AS d${i}`);
    if (NUMERIC.has(c.dtype)) {
      aggs.push(
        `min(${col}) AS mn${i}`,
        `max(${col}) AS mx${i}`,
        `avg(${col}::double precision) AS av${i}`,
        `stddev_samp(${col}::double precision) AS sd${i}`,
      );
      // buckets between the column's own min and max (finite, distinct: else there is no width); clamped at both ends,
      // as the max falls in bucket BUCKETS + 1
      const lo = `a.mn${i}::double precision`;
      const hi = `a.mx${i}::double precision`;
      // (r.: a feature may be named like a column of a)
      parts.push(
        `SELECT ${i} AS i, greatest(least(width_bucket(r.${col}::double precision, ${lo}, ${hi}, ${HISTOGRAM_BUCKETS}), ${HISTOGRAM_BUCKETS}), 1)::text AS v, count(*) AS n, NULL::jsonb AS agg
           FROM r, a WHERE r.${col} IS NOT NULL AND ${lo} < ${hi} AND ${lo} > '-Infinity' AND ${hi} < 'Infinity' GROUP BY 2`,
      );
    } else if (TOPS.has(c.dtype)) {
      parts.push(
        `SELECT ${i} AS i, v, n, NULL::jsonb AS agg FROM (SELECT ${col}::text AS v, count(*) AS n FROM r WHERE ${col} IS NOT NULL
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${TOP_VALUES}) AS t${i}`,
      );
    }
  });
  const cols = columns.length ? columns.map((c) => ident(c.column)).join(", ") : "1";
  const statement = [
    `WITH r AS ${parts.length ? "MATERIALIZED " : ""}(SELECT ${cols} FROM ${relation}),`,
    `a AS (SELECT ${aggs.join(", ")} FROM r)`,
    [`SELECT -1 AS i, NULL::text AS v, NULL::bigint AS n, to_jsonb(a) AS agg FROM a`, ...parts]
      .map((p) => `(${p})`)
      .join(" UNION ALL "),
  ].join(" ");
  const out = rowsOf<{ i: unknown; v: string | null; n: unknown; agg: unknown }>(await db.execute(sql.raw(statement)));
  const aggRow = out.find((r) => Number(r.i) === -1)!;
  const first = (typeof aggRow.agg === "string" ? JSON.parse(aggRow.agg) : aggRow.agg) as Record<string, unknown>;
  const rows = Number(first.n);
  const features: FeatureStats[] = columns.map((c, i) => {
    const f: FeatureStats = {
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
      top_values: TOPS.has(c.dtype) ? [] : null,
    };
    const { min, max } = f;
    if (NUMERIC.has(c.dtype) && min !== null && max !== null && Number.isFinite(min) && Number.isFinite(max)) {
      const width = (max - min) / HISTOGRAM_BUCKETS;
      f.histogram =
        min < max
          ? Array.from({ length: HISTOGRAM_BUCKETS }, (_, b) => ({
              lower: min + width * b,
              upper: b === HISTOGRAM_BUCKETS - 1 ? max : min + width * (b + 1),
              count: 0,
            }))
          : [{ lower: min, upper: max, count: f.count - f.null_count }];
    }
    return f;
  });
  for (const r of out) {
    const i = Number(r.i);
    if (i < 0) continue;
    const f = features[i]!;
    if (f.histogram) {
      const bucket = f.histogram[Number(r.v) - 1];
      if (bucket && f.histogram.length === HISTOGRAM_BUCKETS) bucket.count = Number(r.n);
    } else f.top_values?.push({ value: f.dtype === "bool" ? r.v === "true" : r.v!, count: Number(r.n) });
  }
  for (const f of features)
    f.top_values?.sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)));
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
