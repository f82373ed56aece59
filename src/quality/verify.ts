/**
 * Consistency: does the online store answer what the offline store says is true now? For a sample of a view's
 * entities, the online lookup is compared with historical retrieval "as of now" (the point-in-time rule, with ttl:
 * src/offline/pit.ts), value by value, by dtype.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { invalid } from "../errors.ts";
import { selectViews } from "../offline/materialize.ts";
import { historicalFeatures, TIMESTAMP_COLUMN } from "../offline/pit.ts";
import { ident, rowsOf, sourceRelationText, timestampLiteral } from "../offline/sql.ts";
import type { OnlineStore } from "../online/store.ts";
import type { Dtype } from "../registry/dtypes.ts";
import { elementOf, isList } from "../registry/dtypes.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import { canonicalKey, formatTimestampMicros, keyJson } from "../values.ts";

export interface VerifyDeps {
  db: Db;
  /** Read without counting into the lookup metrics: verify's reads serve nobody. */
  online: OnlineStore;
}

export interface VerifyRequest {
  feature_views?: string[] | undefined;
  /** Entities per view; all of them when the view has fewer. */
  sample?: number | undefined;
}

export const DEFAULT_SAMPLE = 1000;
export const MAX_SAMPLE = 100_000;
/** Examples kept per view. */
const EXAMPLES = 5;
/** Entity rows per online lookup and per historical query. */
const CHUNK = 1000;

export interface VerifyDifference {
  feature: string;
  online: unknown;
  offline: unknown;
}

export interface VerifyExample {
  /** The entity, join key → value. */
  entity: Record<string, unknown>;
  issue: "mismatch" | "missing_online";
  /** The online status of the entity's row (PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE; NULL_VALUE counts as PRESENT). */
  online_status: "PRESENT" | "NOT_FOUND" | "OUTSIDE_MAX_AGE";
  differences: VerifyDifference[];
}

export interface ViewVerification {
  feature_view: string;
  sampled: number;
  matching: number;
  mismatching: number;
  missing_online: number;
  examples: VerifyExample[];
}

export interface Verification {
  /** The "now" both stores were read as of. */
  as_of: string;
  results: ViewVerification[];
}

/** Equal as the dtype sees it: float32 values are compared as float32 (what the store would round either to). */
export function sameValue(dtype: Dtype, a: unknown, b: unknown): boolean {
  if (a === null || a === undefined || b === null || b === undefined)
    return (a === null || a === undefined) && (b === null || b === undefined);
  if (isList(dtype)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    const el = elementOf(dtype);
    return a.every((x, i) => sameValue(el, x, b[i]));
  }
  switch (dtype) {
    case "float32":
      return typeof a === "number" && typeof b === "number" && Math.fround(a) === Math.fround(b);
    case "float64":
    case "unix_timestamp":
      return Number(a) === Number(b);
    case "int32":
    case "int64":
      return String(a) === String(b);
    case "json":
      return canonicalJson(a) === canonicalJson(b);
    default:
      return a === b;
  }
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

/** Entity keys (canonical texts, in `view.joinKeys` order) that have a row "as of now": all, or a random sample. */
async function sampleEntities(db: Db, view: CompiledView, nowUs: number, sample: number): Promise<string[][]> {
  const src = view.batchSource;
  const ts = `s.${ident(src.timestamp_field)}`;
  const now = timestampLiteral(formatTimestampMicros(nowUs));
  const where = [`${ts} <= ${now}`, ...view.joinKeys.map((k) => `s.${ident(k)} IS NOT NULL`)];
  if (view.ttlSeconds > 0) where.push(`${ts} >= ${now} - interval '${view.ttlSeconds} seconds'`);
  const keys = view.joinKeys.map((k, i) => `s.${ident(k)} AS k${i}`);
  const rows = rowsOf<Record<string, unknown>>(
    await db.execute(
      sql.raw(
        `SELECT * FROM (SELECT DISTINCT ${keys.join(", ")} FROM ${sourceRelationText(src, "s")} WHERE ${where.join(" AND ")}) AS d
          ORDER BY random() LIMIT ${sample}`,
      ),
    ),
  );
  return rows.map((r) => view.entities.map((e, i) => canonicalKey(e.valueType, r[`k${i}`])));
}

async function verifyView(
  deps: VerifyDeps,
  snap: RegistrySnapshot,
  view: CompiledView,
  nowUs: number,
  sample: number,
): Promise<ViewVerification> {
  const out: ViewVerification = {
    feature_view: view.name,
    sampled: 0,
    matching: 0,
    mismatching: 0,
    missing_online: 0,
    examples: [],
  };
  const entities = await sampleEntities(deps.db, view, nowUs, sample);
  out.sampled = entities.length;
  const features = view.features.map((f) => `${view.name}:${f.name}`);
  const nowIso = formatTimestampMicros(nowUs);
  for (let start = 0; start < entities.length; start += CHUNK) {
    const chunk = entities.slice(start, start + CHUNK);
    const columns: Record<string, unknown[]> = {};
    view.joinKeys.forEach((k, i) => {
      columns[k] = chunk.map((e) => e[i]);
    });
    const [offline, onlineText] = await Promise.all([
      historicalFeatures(deps.db, snap, {
        entity_df: { ...columns, [TIMESTAMP_COLUMN]: chunk.map(() => nowIso) },
        features,
        full_feature_names: true,
      }),
      deps.online.getOnlineFeatures(
        snap,
        { features, entities: columns, full_feature_names: true },
        { maxEntityRows: CHUNK, nowMs: nowUs / 1000, onStatuses: undefined },
      ),
    ]);
    const online = JSON.parse(onlineText) as { results: { values: unknown[]; statuses: string[] }[] };
    const first = view.joinKeys.length;
    for (let r = 0; r < chunk.length; r++) {
      const statuses = new Set<string>();
      const differences: VerifyDifference[] = [];
      let offlineHasValue = false;
      view.features.forEach((f, j) => {
        const col = online.results[first + j]!;
        statuses.add(col.statuses[r]!);
        const onlineValue = col.values[r];
        const offlineValue = offline.df[`${view.name}__${f.name}`]![r];
        if (offlineValue !== null && offlineValue !== undefined) offlineHasValue = true;
        if (!sameValue(f.dtype, onlineValue, offlineValue))
          differences.push({ feature: f.name, online: onlineValue ?? null, offline: offlineValue ?? null });
      });
      const status: VerifyExample["online_status"] = statuses.has("NOT_FOUND")
        ? "NOT_FOUND"
        : statuses.has("OUTSIDE_MAX_AGE")
          ? "OUTSIDE_MAX_AGE"
          : "PRESENT";
      let issue: VerifyExample["issue"] | undefined;
      if (status === "NOT_FOUND" && offlineHasValue) issue = "missing_online";
      else if (differences.length > 0) issue = "mismatch";
      if (issue === undefined) out.matching++;
      else {
        if (issue === "missing_online") out.missing_online++;
        else out.mismatching++;
        if (out.examples.length < EXAMPLES) {
          const entity: Record<string, unknown> = {};
          view.entities.forEach((e, i) => {
            entity[e.joinKey] = keyJson(e.valueType, chunk[r]![i]!);
          });
          out.examples.push({ entity, issue, online_status: status, differences });
        }
      }
    }
  }
  return out;
}

/** Verifies the views named (each must be online), or every online view of the project, one after the other. */
export async function verify(
  deps: VerifyDeps,
  snap: RegistrySnapshot,
  req: VerifyRequest,
  nowMs: number = Date.now(),
): Promise<Verification> {
  const sample = req.sample ?? DEFAULT_SAMPLE;
  if (!Number.isInteger(sample) || sample < 1 || sample > MAX_SAMPLE)
    throw invalid(`sample must be a whole number from 1 to ${MAX_SAMPLE}`, [
      { path: "sample", message: `not in 1..${MAX_SAMPLE}` },
    ]);
  const views = selectViews(snap, req.feature_views);
  const nowUs = nowMs * 1000;
  const results: ViewVerification[] = [];
  for (const view of views) results.push(await verifyView(deps, snap, view, nowUs, sample));
  return { as_of: formatTimestampMicros(nowUs), results };
}
