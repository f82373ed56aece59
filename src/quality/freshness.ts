/**
 * Freshness: when a feature view's online values were last brought up to date, by materialisation or by a push, and
 * how far behind now that leaves them. Read from where every server can see it: the job record (Postgres) and the
 * online store's last-push marks (src/online/last-push.ts), never a server's memory.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { epochMicros, ident, rowsOf, sourceRelationText } from "../offline/sql.ts";
import type { OnlineStore } from "../online/store.ts";
import type { CompiledView } from "../registry/snapshot.ts";
import { formatTimestampMicros } from "../values.ts";

export interface FreshnessDeps {
  db: Db;
  online: OnlineStore;
}

/** A view's freshness as the API answers it (timestamps RFC 3339 UTC or null). */
export interface FreshnessInfo {
  /** End of the last successful materialisation window. */
  last_materialized_end: string | null;
  /** Newest event time pushed (or written) to the online store. */
  last_push_event_timestamp: string | null;
  /** Newest event time in the view's batch source. */
  newest_offline_event_timestamp: string | null;
  /** Now − the later of the first two, in seconds; null when neither exists. */
  lag_seconds: number | null;
}

const micros = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const iso = (us: number | null) => (us === null ? null : formatTimestampMicros(us));

/** End of the last successful window (epoch µs) of each view of the project that has one. */
export async function lastMaterializedEnds(db: Db, project?: string): Promise<Map<string, Map<string, number>>> {
  const where = project === undefined ? sql`` : sql` WHERE project = ${project}`;
  const rows = rowsOf<{ project: string; feature_view: string; end_us: unknown }>(
    await db.execute(
      sql`SELECT project, feature_view, ${sql.raw(epochMicros("max(end_ts)"))} AS end_us
            FROM larder.materialized_intervals${where} GROUP BY project, feature_view`,
    ),
  );
  const out = new Map<string, Map<string, number>>();
  for (const r of rows) {
    let views = out.get(r.project);
    if (!views) {
      views = new Map();
      out.set(r.project, views);
    }
    views.set(r.feature_view, Number(r.end_us));
  }
  return out;
}

/** The newest event time (epoch µs) in a view's batch source; null when it is empty. */
export async function newestOfflineEvent(db: Db, view: CompiledView): Promise<number | null> {
  const ts = `s.${ident(view.batchSource.timestamp_field)}`;
  const rows = rowsOf<{ us: unknown }>(
    await db.execute(
      sql.raw(`SELECT ${epochMicros(`max(${ts})`)} AS us FROM ${sourceRelationText(view.batchSource, "s")}`),
    ),
  );
  return micros(rows[0]?.us);
}

export async function viewFreshness(
  deps: FreshnessDeps,
  view: CompiledView,
  nowMs: number = Date.now(),
): Promise<FreshnessInfo> {
  const [ends, pushes, offline] = await Promise.all([
    lastMaterializedEnds(deps.db, view.project),
    deps.online.lastPushes(view.project, [view.name]),
    newestOfflineEvent(deps.db, view),
  ]);
  const materialized = ends.get(view.project)?.get(view.name) ?? null;
  const pushed = pushes[0] ?? null;
  const latest = materialized === null ? pushed : pushed === null ? materialized : Math.max(materialized, pushed);
  return {
    last_materialized_end: iso(materialized),
    last_push_event_timestamp: iso(pushed),
    newest_offline_event_timestamp: iso(offline),
    lag_seconds: latest === null ? null : (nowMs * 1000 - latest) / 1_000_000,
  };
}

/** One view's last materialised end and last push (epoch µs or null), as the metrics export them. */
export interface FreshnessSample {
  project: string;
  feature_view: string;
  lastMaterializedEnd: number | null;
  lastPush: number | null;
}

/** The figures of every view of the projects given (the registry's snapshots), in a few queries. */
export async function freshnessSamples(
  deps: FreshnessDeps,
  projects: { project: string; views: string[] }[],
): Promise<FreshnessSample[]> {
  const [ends, ...pushes] = await Promise.all([
    lastMaterializedEnds(deps.db),
    ...projects.map((p) => deps.online.lastPushes(p.project, p.views)),
  ]);
  const out: FreshnessSample[] = [];
  projects.forEach((p, i) => {
    p.views.forEach((v, j) => {
      out.push({
        project: p.project,
        feature_view: v,
        lastMaterializedEnd: ends.get(p.project)?.get(v) ?? null,
        lastPush: pushes[i]![j] ?? null,
      });
    });
  });
  return out;
}
