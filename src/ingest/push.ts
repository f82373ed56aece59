/**
 * Pushes: a column-oriented frame (`df`) checked against the schemas of the views it feeds, then written to the
 * online store, to the push source's batch table, or both. Everything is checked before anything is written.
 * It writes both stores, so it sits above them (src/online, src/offline), which know nothing of each other.
 */
import type { Db } from "../db/client.ts";
import { type DomainError, invalid } from "../errors.ts";
import { type AppendColumn, appendRows } from "../offline/append.ts";
import type { OnlineStore, OnlineWriteRow } from "../online/store.ts";
import type { PostgresSourceSpec } from "../registry/definitions.ts";
import type { Dtype } from "../registry/dtypes.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import { canonicalKey, normalizeValue, parseTimestampMicros, ValueError } from "../values.ts";

export type PushTarget = "online" | "offline" | "online_and_offline";
export type Frame = Record<string, unknown[]>;

export interface PushDeps {
  online: OnlineStore;
  db: Db;
}

interface PreparedFrame {
  n: number;
  /** Rows to write online, per view. */
  online: { view: CompiledView; rows: OnlineWriteRow[] }[];
  /** Columns for the batch table, in the frame's order, values in their canonical form. */
  offline: AppendColumn[];
}

const bad = (path: string, message: string): DomainError => invalid(`${path}: ${message}`, [{ path, message }]);

function cell<T>(column: string, row: number, dtype: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof ValueError)) throw e;
    throw bad(`df.${column}[${row}]`, `${e.message} (column ${column} is ${dtype})`);
  }
}

/**
 * Checks a frame against the views it is written to (which share one batch source) and converts every cell.
 * Columns: each view's join keys, the batch source's timestamp field and, optionally, its created-timestamp field,
 * and every feature of every view; anything else is an unknown column.
 */
export function prepareFrame(views: CompiledView[], batch: PostgresSourceSpec, df: Frame): PreparedFrame {
  const tsField = batch.timestamp_field;
  const createdField = batch.created_timestamp_field;
  const names = Object.keys(df);

  // lengths first: every other message can then name a row that exists
  let n = -1;
  let firstName = "";
  for (const name of names) {
    const col = df[name];
    if (!Array.isArray(col)) throw bad(`df.${name}`, "must be an array of values (one per row)");
    if (n === -1) {
      n = col.length;
      firstName = name;
    } else if (col.length !== n)
      throw bad(
        `df.${name}`,
        `has ${col.length} values but ${firstName} has ${n}; every column needs one value per row`,
      );
  }

  const keyTypes = new Map<string, { type: CompiledView["entities"][number]["valueType"]; view: string }>();
  const featureTypes = new Map<string, { dtype: Dtype; view: string }[]>();
  for (const v of views) {
    v.entities.forEach((e) => {
      if (!keyTypes.has(e.joinKey)) keyTypes.set(e.joinKey, { type: e.valueType, view: v.name });
    });
    for (const f of v.features) {
      const list = featureTypes.get(f.name) ?? [];
      list.push({ dtype: f.dtype, view: v.name });
      featureTypes.set(f.name, list);
    }
  }
  const expected = [...keyTypes.keys(), tsField, ...featureTypes.keys()];
  for (const name of names) {
    if (!keyTypes.has(name) && !featureTypes.has(name) && name !== tsField && name !== createdField)
      throw bad(
        `df.${name}`,
        `unknown column; expected ${expected.join(", ")}${createdField ? ` (and optionally ${createdField})` : ""}`,
      );
  }
  for (const [k, { view }] of keyTypes)
    if (!(k in df)) throw bad(`df.${k}`, `missing join key column (needed by feature view ${view})`);
  if (!(tsField in df)) throw bad(`df.${tsField}`, "missing event timestamp column");
  for (const [f, list] of featureTypes)
    if (!(f in df)) throw bad(`df.${f}`, `missing feature column (a feature of ${list.map((x) => x.view).join(", ")})`);
  if (n <= 0) return { n: Math.max(n, 0), online: views.map((view) => ({ view, rows: [] })), offline: [] };

  // every cell, converted once per distinct type
  const keys = new Map<string, string[]>();
  for (const [k, { type }] of keyTypes) {
    const col = df[k]!;
    keys.set(
      k,
      col.map((v, r) => {
        if (v === null || v === undefined) throw bad(`df.${k}[${r}]`, "a join key cannot be null");
        return cell(k, r, type, () => canonicalKey(type, v));
      }),
    );
  }
  const eventTs = df[tsField]!.map((v, r) => {
    if (v === null || v === undefined) throw bad(`df.${tsField}[${r}]`, "the event timestamp cannot be null");
    return cell(tsField, r, "a timestamp", () => parseTimestampMicros(v));
  });
  const createdCol = createdField !== undefined ? df[createdField] : undefined;
  const createdTs = createdCol
    ? createdCol.map((v, r) =>
        v === null || v === undefined ? 0 : cell(createdField!, r, "a timestamp", () => parseTimestampMicros(v)),
      )
    : undefined;
  const features = new Map<string, unknown[]>(); // key: name + dtype
  for (const [f, list] of featureTypes) {
    for (const { dtype } of list) {
      const id = `${f}\0${dtype}`;
      if (features.has(id)) continue;
      features.set(
        id,
        df[f]!.map((v, r) => cell(f, r, dtype, () => normalizeValue(dtype, v))),
      );
    }
  }

  checkExpectations(views, features, n);

  const online = views.map((view) => {
    const keyCols = view.joinKeys.map((k) => keys.get(k)!);
    const valueCols = view.features.map((f) => features.get(`${f.name}\0${f.dtype}`)!);
    const rows: OnlineWriteRow[] = new Array(n);
    for (let r = 0; r < n; r++)
      rows[r] = {
        key: keyCols.map((c) => c[r]!),
        eventTs: eventTs[r]!,
        createdTs: createdTs?.[r] ?? 0,
        values: valueCols.map((c) => c[r]),
      };
    return { view, rows };
  });

  const offline: AppendColumn[] = names.map((name) => {
    if (keys.has(name)) return { name, kind: "key", values: keys.get(name)! };
    if (name === tsField) return { name, kind: "timestamp", values: eventTs };
    if (name === createdField) return { name, kind: "timestamp", values: createdTs!.map((x) => (x === 0 ? null : x)) };
    const { dtype } = featureTypes.get(name)![0]!;
    return { name, kind: "feature", dtype, values: features.get(`${name}\0${dtype}`)! };
  });
  return { n, online, offline };
}

/** Violations named in one 400: enough to fix a frame, not a wall of text. */
const MAX_VIOLATIONS = 20;

/**
 * Every value against the expectations of the features of every view it is written to (features: converted columns by
 * name and dtype). Any violation is a 400 naming each offending cell (`df.<feature>[<row>]`), before anything is written.
 */
function checkExpectations(views: CompiledView[], features: Map<string, unknown[]>, n: number): void {
  const details: { path: string; message: string; feature_view: string; feature: string; row: number }[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const view of views)
    for (const f of view.features) {
      const check = f.check;
      if (!check) continue;
      const values = features.get(`${f.name}\0${f.dtype}`)!;
      for (let r = 0; r < n; r++) {
        const problem = check(values[r])?.message;
        if (problem === undefined) continue;
        const path = `df.${f.name}[${r}]`;
        if (seen.has(`${path} ${problem}`)) continue; // two views with the same expectation on one column
        seen.add(`${path} ${problem}`);
        total++;
        if (details.length < MAX_VIOLATIONS)
          details.push({
            path,
            message: `${problem} (expected by feature view ${view.name})`,
            feature_view: view.name,
            feature: f.name,
            row: r,
          });
      }
    }
  if (total === 0) return;
  details.sort((a, b) => a.row - b.row || a.path.localeCompare(b.path));
  const first = details[0]!;
  throw invalid(
    `${first.path}: ${first.message}${total > 1 ? `; ${total} values in all break the features' expectations` : ""}; nothing was written`,
    details,
  );
}

/**
 * What a write answers. `rows`: the frame's rows (Feast answers this). `written` and `skipped_older` count the online
 * store's rows, one per frame row and feature view served online that it feeds: stored, or left alone because the
 * store already held a newer value (event time, then created time). Absent when nothing was written online.
 */
export interface WriteCounts {
  rows: number;
  written?: number;
  skipped_older?: number;
}

async function writeOnline(online: OnlineStore, prepared: PreparedFrame): Promise<WriteCounts> {
  const counts = { rows: prepared.n, written: 0, skipped_older: 0 };
  // Views are written one after the other; each write is atomic per key and never older-over-newer, so a retry
  // after a failure part-way is safe.
  const pushed: { view: CompiledView; eventTs: number }[] = [];
  for (const { view, rows } of prepared.online) {
    if (!view.online || rows.length === 0) continue;
    const { written, skipped } = await online.write(view, rows);
    counts.written += written;
    counts.skipped_older += skipped;
    let newest = rows[0]!.eventTs;
    for (const r of rows) if (r.eventTs > newest) newest = r.eventTs;
    pushed.push({ view, eventTs: newest });
  }
  // after the rows: the time recorded is never one the store does not hold yet (freshness, last-push metric)
  await online.recordPush(pushed);
  return counts;
}

/** `POST /push`: every view fed by the push source. */
export async function push(
  deps: PushDeps,
  snapshot: RegistrySnapshot,
  req: { push_source_name: string; df: Frame; to: PushTarget },
): Promise<WriteCounts> {
  const source = snapshot.sources.get(req.push_source_name);
  if (!source)
    throw bad("push_source_name", `unknown push source "${req.push_source_name}" in project ${snapshot.project}`);
  if (source.kind !== "push")
    throw bad("push_source_name", `data source ${source.name} is a ${source.kind} source, not a push source`);
  const views = snapshot.viewsByPushSource.get(source.name) ?? [];
  if (views.length === 0) throw bad("push_source_name", `push source ${source.name} feeds no feature view`);
  const batch = views[0]!.batchSource;
  if (req.to !== "online" && !batch.table)
    throw bad(
      "to",
      `the batch source ${batch.name} of push source ${source.name} is a query, so rows cannot be appended to it`,
    );
  const prepared = prepareFrame(views, batch, req.df);
  if (req.to === "online") return writeOnline(deps.online, prepared);
  if (prepared.n === 0) return req.to === "offline" ? { rows: 0 } : writeOnline(deps.online, prepared);
  // One transaction for the batch table; with online_and_offline it commits only after the online write
  // succeeded, so a failure leaves neither store half-written by this request's offline part.
  return deps.db.transaction(async (tx) => {
    await appendRows(tx, batch, prepared.offline, prepared.n);
    return req.to === "online_and_offline" ? writeOnline(deps.online, prepared) : { rows: prepared.n };
  });
}

/** `POST /write-to-online-store`: one view, online only. */
export async function writeToOnlineStore(
  deps: PushDeps,
  snapshot: RegistrySnapshot,
  req: { feature_view_name: string; df: Frame },
): Promise<WriteCounts> {
  const view = snapshot.views.get(req.feature_view_name);
  if (!view)
    throw bad("feature_view_name", `unknown feature view "${req.feature_view_name}" in project ${snapshot.project}`);
  if (!view.online) throw bad("feature_view_name", `feature view ${view.name} is not served online (online: false)`);
  return writeOnline(deps.online, prepareFrame([view], view.batchSource, req.df));
}
