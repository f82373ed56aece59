/**
 * The newest event time pushed to each feature view, kept in the online store itself (not in a server's memory): every
 * server sees the same figure, it survives restarts, and a push needs no store beyond the one it writes to.
 *
 * Key:   <prefix><project>:__last_push:<view>     (no `{…}`: it can never be an entity row's key)
 * Value: <eventTs>␟0␟<LAST_PUSH_LAYOUT>␟          the same header as a row's, so the backend's "never older over
 *        newer" compare-and-set keeps the newest time whatever order concurrent pushes land in.
 */
import type { OnlineKvEntry } from "./kv.ts";
import { SEP } from "./layout.ts";

const LAST_PUSH_LAYOUT = "last_push";

export function lastPushKey(prefix: string, project: string, view: string): string {
  return `${prefix}${project}:__last_push:${view}`;
}

/** The entry that records `eventTs` (epoch µs) as pushed to the view, unless a newer one is recorded. */
export function lastPushEntry(prefix: string, project: string, view: string, eventTs: number): OnlineKvEntry {
  return {
    key: lastPushKey(prefix, project, view),
    value: `${eventTs}${SEP}0${SEP}${LAST_PUSH_LAYOUT}${SEP}`,
    eventTs,
    createdTs: 0,
    layout: LAST_PUSH_LAYOUT,
    expireAtMs: null,
  };
}

/** The event time (epoch µs) a stored entry records, or null. */
export function readLastPush(value: string | null): number | null {
  if (value === null) return null;
  const end = value.indexOf(SEP);
  const n = Number(end < 0 ? value : value.slice(0, end));
  return Number.isFinite(n) ? n : null;
}
