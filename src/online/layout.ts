/**
 * Online key layout and value encoding (documented in docs/redis-layout.md).
 *
 * Key:   <prefix><project>:{<bucket>}<joinKey>=<value>[,<joinKey>=<value>…]:<view>
 *        The Redis Cluster hash tag is the entity's slot bucket (slot-buckets.ts: a hash of the entity part), so every
 *        view's row of one entity lands in one slot, and a many-entity lookup's keys in a few slots per master.
 *        Key values are the canonical texts (`canonicalKey`), with `%` `,` `{` `}` percent-escaped so the entity part
 *        never opens a hash tag of its own; view names are identifiers (no `:`), so the key splits at its last `:`
 *        and the encoding is injective.
 * Value: <eventTs>␟<createdTs>␟<layoutId>␟<"event time" JSON>␟<feature 0 JSON>␟<feature 1 JSON>…   (␟ = \x1f)
 *        Every feature value is kept as a ready JSON fragment in schema order: answering is string concatenation,
 *        with no JSON.parse nor stringify per value. \x1f never appears raw in JSON text (control characters are
 *        always escaped), so splitting on it is exact.
 */
import type { CompiledView } from "../registry/snapshot.ts";
import { formatTimestampMicros } from "../values.ts";
import { BUCKET_TAGS, bucketOf } from "./slot-buckets.ts";

export const SEP = "\x1f";
/** Index of the first feature fragment in a split value. */
export const FIRST_VALUE = 4;
export const HEADER_LAYOUT = 2;
export const HEADER_TS_JSON = 3;

const NEEDS_ESCAPE = /[%,{}]/;
const ESCAPE_ALL = /[%,{}]/g;
const escapeChar = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`;

function escapeKeyValue(v: string): string {
  return NEEDS_ESCAPE.test(v) ? v.replace(ESCAPE_ALL, escapeChar) : v;
}

/** The entity part of a key, from canonical key texts in `view.joinKeys` order. */
export function entityPart(joinKeys: readonly string[], canonical: readonly string[]): string {
  if (joinKeys.length === 1) return `${joinKeys[0]}=${escapeKeyValue(canonical[0]!)}`;
  let s = "";
  for (let i = 0; i < joinKeys.length; i++) {
    if (i) s += ",";
    s += `${joinKeys[i]}=${escapeKeyValue(canonical[i]!)}`;
  }
  return s;
}

/**
 * What every view's key of one entity shares: `<prefix><project>:{<bucket>}<entity part>`. `bucket` is the entity's
 * (`bucketOf(entity)`), passed by a caller that keeps it beside the key (lookups hand it to the backend's read).
 */
export function entityKeyHead(prefix: string, project: string, entity: string, bucket = bucketOf(entity)): string {
  return `${prefix}${project}:${BUCKET_TAGS[bucket]!}${entity}`;
}

/** One view's key of the entity whose head (`entityKeyHead`) is given. */
export function viewKey(head: string, view: string): string {
  return `${head}:${view}`;
}

export function onlineKey(prefix: string, project: string, view: string, entity: string): string {
  return viewKey(entityKeyHead(prefix, project, entity), view);
}

/** Encodes one row; `values` are already normalised (`normalizeValue`), in `view.features` order. */
export function encodeValue(
  view: CompiledView,
  eventTs: number,
  createdTs: number,
  values: readonly unknown[],
): string {
  let s = `${eventTs}${SEP}${createdTs}${SEP}${view.layoutId}${SEP}"${formatTimestampMicros(eventTs)}"`;
  for (let i = 0; i < view.features.length; i++) {
    const v = values[i];
    s += SEP + (v === null || v === undefined ? "null" : JSON.stringify(v));
  }
  return s;
}

/** Margin a key outlives its ttl by, so a value just past ttl reads OUTSIDE_MAX_AGE rather than NOT_FOUND. */
export const EXPIRY_MARGIN_MS = 24 * 3600 * 1000;

/**
 * When a stored row may be dropped: ttl after its event time plus a margin, and never sooner than the margin after
 * it was written (an old row pushed now is still answered OUTSIDE_MAX_AGE for a while). ttl 0: never.
 */
export function expireAtMs(view: CompiledView, eventTs: number, nowMs: number): number | null {
  if (view.ttlSeconds <= 0) return null;
  return Math.max(Math.floor(eventTs / 1000) + view.ttlSeconds * 1000, nowMs) + EXPIRY_MARGIN_MS;
}
