import { invalid } from "../errors.ts";
import type { KeyType } from "../registry/dtypes.ts";
import type { CompiledFeature, CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import { canonicalKey, EPOCH_TIMESTAMP, keyJson, ValueError } from "../values.ts";
import type { OnlineKv } from "./kv.ts";
import {
  encodeValue,
  entityPart,
  expireAtMs,
  FIRST_VALUE,
  HEADER_EVENT,
  HEADER_LAYOUT,
  HEADER_TS_JSON,
  onlineKey,
  SEP,
} from "./layout.ts";
import type { OnlineFeaturesRequest, OnlineReadOptions, OnlineStore, OnlineWriteRow, WriteResult } from "./store.ts";

interface ResolvedFeature {
  view: CompiledView;
  /** Index of the view in the request's view list. */
  viewIndex: number;
  feature: CompiledFeature;
  outName: string;
}

const EPOCH_JSON = `"${EPOCH_TIMESTAMP}"`;
const S_PRESENT = '"PRESENT"';
const S_NOT_FOUND = '"NOT_FOUND"';
const S_NULL = '"NULL_VALUE"';
const S_OUTSIDE = '"OUTSIDE_MAX_AGE"';

/** Resolves `features` or `feature_service` to (view, feature) pairs in request order, checking every name. */
export function resolveFeatures(snapshot: RegistrySnapshot, req: OnlineFeaturesRequest): ResolvedFeature[] {
  const hasFeatures = req.features !== undefined && req.features !== null;
  const hasService = req.feature_service !== undefined && req.feature_service !== null;
  if (hasFeatures && hasService) throw invalid("give either features or feature_service, not both");
  if (!hasFeatures && !hasService) throw invalid('give features ("view:feature" names) or a feature_service');
  const pairs: { view: CompiledView; feature: CompiledFeature }[] = [];
  if (hasService) {
    const svc = snapshot.services.get(req.feature_service!);
    if (!svc)
      throw invalid(
        `feature_service: unknown feature service "${req.feature_service}" in project ${snapshot.project}`,
        [{ path: "feature_service", message: "unknown feature service" }],
      );
    pairs.push(...svc.features);
  } else {
    const refs = req.features!;
    if (refs.length === 0)
      throw invalid("features: give at least one feature", [{ path: "features", message: "empty" }]);
    refs.forEach((ref, i) => {
      const path = `features[${i}]`;
      const colon = ref.indexOf(":");
      if (colon <= 0 || colon === ref.length - 1 || ref.indexOf(":", colon + 1) !== -1)
        throw invalid(`${path}: "${ref}" is not a feature reference ("view:feature")`, [
          { path, message: "bad reference" },
        ]);
      const viewName = ref.slice(0, colon);
      const featureName = ref.slice(colon + 1);
      const view = snapshot.views.get(viewName);
      if (!view)
        throw invalid(`${path}: unknown feature view "${viewName}" in project ${snapshot.project}`, [
          { path, message: "unknown feature view" },
        ]);
      const feature = view.featureByName.get(featureName);
      if (!feature)
        throw invalid(`${path}: feature view ${viewName} has no feature "${featureName}"`, [
          { path, message: "unknown feature" },
        ]);
      pairs.push({ view, feature });
    });
  }
  const full = req.full_feature_names === true;
  const viewIndex = new Map<CompiledView, number>();
  const seen = new Map<string, string>();
  const out: ResolvedFeature[] = [];
  for (const { view, feature } of pairs) {
    if (!view.online)
      throw invalid(`feature view ${view.name} is not served online (online: false)`, [
        { path: "features", message: `${view.name} is offline only` },
      ]);
    const outName = full ? `${view.name}__${feature.name}` : feature.name;
    const ref = `${view.name}:${feature.name}`;
    const prev = seen.get(outName);
    if (prev !== undefined) {
      throw invalid(
        prev === ref
          ? `feature ${ref} is requested twice`
          : `feature name collision: ${prev} and ${ref} are both named "${outName}"; set full_feature_names: true`,
        [{ path: "features", message: `duplicate output name ${outName}` }],
      );
    }
    seen.set(outName, ref);
    let vi = viewIndex.get(view);
    if (vi === undefined) {
      vi = viewIndex.size;
      viewIndex.set(view, vi);
    }
    out.push({ view, viewIndex: vi, feature, outName });
  }
  return out;
}

/** `x,x,…,x` (n times). */
function repeatJoined(x: string, n: number): string {
  return n === 0 ? "" : `${`${x},`.repeat(n - 1)}${x}`;
}

/** The JSON text of a canonical key, as the join key column answers it (`keyJson`), without a BigInt when it is short. */
function keyJsonText(type: KeyType, canonical: string): string {
  // up to 15 digits (and a sign) is always a safe integer, whose JSON text is the canonical text itself
  if ((type === "int64" || type === "int32") && canonical.length <= 15) return canonical;
  return JSON.stringify(keyJson(type, canonical));
}

interface ResolvedLookup {
  features: ResolvedFeature[];
  /** The views read, in the order of `ResolvedFeature.viewIndex`. */
  views: CompiledView[];
  /** The features' output names as JSON strings, comma-separated. */
  featureNamesJson: string;
}

/**
 * Resolved feature lists by snapshot and request: model servers send the same few lists again and again, and a
 * snapshot never changes, so each list is checked once per registry version. Only lists that resolved are kept.
 */
const lookupCache = new WeakMap<RegistrySnapshot, Map<string, ResolvedLookup>>();
const LOOKUP_CACHE_MAX = 1000;

function resolveLookup(snapshot: RegistrySnapshot, req: OnlineFeaturesRequest): ResolvedLookup {
  const full = req.full_feature_names === true ? "1" : "0";
  let cacheKey: string | undefined;
  // The count is part of the key: a valid reference holds no newline, so a list joined with newlines only collides
  // with a list of another length.
  if (Array.isArray(req.features) && (req.feature_service === undefined || req.feature_service === null))
    cacheKey = `f${full}${req.features.length}\n${req.features.join("\n")}`;
  else if (typeof req.feature_service === "string" && (req.features === undefined || req.features === null))
    cacheKey = `s${full}${req.feature_service}`;
  let cache = lookupCache.get(snapshot);
  const hit = cacheKey === undefined ? undefined : cache?.get(cacheKey);
  if (hit) return hit;
  const features = resolveFeatures(snapshot, req);
  const views: CompiledView[] = [];
  for (const f of features) views[f.viewIndex] = f.view;
  const lookup = { features, views, featureNamesJson: features.map((f) => JSON.stringify(f.outName)).join(",") };
  if (cacheKey !== undefined) {
    if (!cache) {
      cache = new Map();
      lookupCache.set(snapshot, cache);
    }
    if (cache.size >= LOOKUP_CACHE_MAX) cache.clear();
    cache.set(cacheKey, lookup);
  }
  return lookup;
}

/**
 * The online store, written once over a key-value backend: encodes rows for writes and builds lookup answers.
 * Answers are built as JSON text from the stored fragments (see layout.ts): the hot path parses no stored value.
 */
export class KvOnlineStore implements OnlineStore {
  constructor(
    readonly kv: OnlineKv,
    readonly prefix: string,
  ) {}

  async write(view: CompiledView, rows: OnlineWriteRow[]): Promise<WriteResult> {
    if (rows.length === 0) return { written: 0, skipped: 0 };
    const now = Date.now();
    const entries = rows.map((r) => {
      if (r.key.length !== view.joinKeys.length)
        throw new Error(
          `online write to ${view.name}: key has ${r.key.length} parts, the view has ${view.joinKeys.length}`,
        );
      const eventTs = Math.round(r.eventTs);
      const createdTs = Math.round(r.createdTs || 0);
      return {
        key: onlineKey(this.prefix, view.project, view.name, entityPart(view.joinKeys, r.key)),
        value: encodeValue(view, eventTs, createdTs, r.values),
        eventTs,
        createdTs,
        layout: view.layoutId,
        expireAtMs: expireAtMs(view, eventTs, now),
      };
    });
    const res = await this.kv.putIfNewer(entries);
    let written = 0;
    for (const w of res) if (w) written++;
    return { written, skipped: rows.length - written };
  }

  async getOnlineFeatures(
    snapshot: RegistrySnapshot,
    req: OnlineFeaturesRequest,
    opts: OnlineReadOptions,
  ): Promise<string> {
    const { features, views, featureNamesJson } = resolveLookup(snapshot, req);

    // ---- entity rows: every column known, same lengths, keys normalised by value type ----
    const entityNames = Object.keys(req.entities);
    let n = -1;
    const columns = new Map<string, { type: KeyType; canonical: string[] }>();
    for (const name of entityNames) {
      const path = `entities.${name}`;
      const raw = req.entities[name]!;
      const entity = snapshot.entitiesByJoinKey.get(name);
      if (!entity)
        throw invalid(`${path}: "${name}" is not the join key of any entity in project ${snapshot.project}`, [
          { path, message: "unknown join key" },
        ]);
      if (n === -1) n = raw.length;
      else if (raw.length !== n)
        throw invalid(
          `${path}: has ${raw.length} values, ${entityNames[0]} has ${n}; entity columns must have equal lengths`,
          [{ path, message: "length differs" }],
        );
      if (raw.length > opts.maxEntityRows)
        throw invalid(
          `entities: ${raw.length} entity rows is more than the limit of ${opts.maxEntityRows} per request`,
          [{ path, message: "too many entity rows" }],
        );
      const type = entity.valueType;
      const canonical = new Array<string>(raw.length);
      for (let i = 0; i < raw.length; i++) {
        const v = raw[i];
        // the common case, a safe integer for an int64 key, without canonicalKey's BigInt round trip (same text)
        if (type === "int64" && typeof v === "number" && Number.isSafeInteger(v)) {
          canonical[i] = String(v);
          continue;
        }
        try {
          canonical[i] = canonicalKey(type, v);
        } catch (e) {
          if (!(e instanceof ValueError)) throw e;
          throw invalid(`${path}[${i}]: ${e.message} (${name} is ${type})`, [
            { path: `${path}[${i}]`, message: e.message },
          ]);
        }
      }
      columns.set(name, { type, canonical });
    }
    if (n === -1)
      throw invalid("entities: give at least one join key column", [{ path: "entities", message: "empty" }]);
    for (const view of views)
      for (const k of view.joinKeys)
        if (!columns.has(k))
          throw invalid(`entities: missing join key "${k}", needed by feature view ${view.name}`, [
            { path: `entities.${k}`, message: "missing join key" },
          ]);

    // ---- one read for every (view, entity row); repeated rows share a key ----
    const keyIndex = new Map<string, number>();
    const keys: string[] = [];
    const keyView: CompiledView[] = [];
    const slot = new Int32Array(views.length * n);
    for (let v = 0; v < views.length; v++) {
      const view = views[v]!;
      const keyCols = view.joinKeys.map((k) => columns.get(k)!.canonical);
      const parts = new Array<string>(keyCols.length);
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < keyCols.length; j++) parts[j] = keyCols[j]![r]!;
        const key = onlineKey(this.prefix, snapshot.project, view.name, entityPart(view.joinKeys, parts));
        let idx = keyIndex.get(key);
        if (idx === undefined) {
          idx = keys.length;
          keys.push(key);
          keyView.push(view);
          keyIndex.set(key, idx);
        }
        slot[v * n + r] = idx;
      }
    }
    const raw = await this.kv.getMany(keys);

    // ---- decode each stored row once: its fragments, or why it is not answered ----
    const nowMicros = (opts.nowMs ?? Date.now()) * 1000;
    const decoded = new Array<string[] | null>(keys.length);
    const stale = new Uint8Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const s = raw[i];
      if (s === null || s === undefined) {
        decoded[i] = null;
        continue;
      }
      const parts = (typeof s === "string" ? s : String(s)).split(SEP);
      const view = keyView[i]!;
      // A row written under an older schema of the view cannot be read by position: answer it as missing.
      if (parts[HEADER_LAYOUT] !== view.layoutId || parts.length !== FIRST_VALUE + view.features.length) {
        decoded[i] = null;
        continue;
      }
      decoded[i] = parts;
      if (view.ttlSeconds > 0 && Number(parts[HEADER_EVENT]) < nowMicros - view.ttlSeconds * 1_000_000) stale[i] = 1;
    }

    // ---- the answer, as text ----
    // A view's statuses and event times are the same for each of its features (but for NULL_VALUE): built once per view.
    const viewTs = new Array<string>(views.length);
    const viewStatuses = new Array<string>(views.length);
    for (let v = 0; v < views.length; v++) {
      let ts = "";
      let statuses = "";
      for (let r = 0; r < n; r++) {
        const sep = r ? "," : "";
        const k = slot[v * n + r]!;
        const parts = decoded[k];
        ts += sep + (parts ? parts[HEADER_TS_JSON]! : EPOCH_JSON);
        statuses += sep + (parts ? (stale[k] ? S_OUTSIDE : S_PRESENT) : S_NOT_FOUND);
      }
      viewTs[v] = ts;
      viewStatuses[v] = statuses;
    }
    let out = `{"metadata":{"feature_names":[`;
    for (let i = 0; i < entityNames.length; i++) out += `${i ? "," : ""}${JSON.stringify(entityNames[i])}`;
    out += `${featureNamesJson ? `,${featureNamesJson}` : ""}]},"results":[`;
    const allPresent = repeatJoined(S_PRESENT, n);
    const allEpoch = repeatJoined(EPOCH_JSON, n);
    let first = true;
    for (const name of entityNames) {
      const col = columns.get(name)!;
      let values = "";
      for (let r = 0; r < n; r++) values += (r ? "," : "") + keyJsonText(col.type, col.canonical[r]!);
      out += `${first ? "" : ","}{"values":[${values}],"statuses":[${allPresent}],"event_timestamps":[${allEpoch}]}`;
      first = false;
    }
    for (const f of features) {
      const fi = FIRST_VALUE + f.feature.index;
      const base = f.viewIndex * n;
      let values = "";
      let nulls = false;
      for (let r = 0; r < n; r++) {
        const sep = r ? "," : "";
        const k = slot[base + r]!;
        const parts = decoded[k];
        if (!parts || stale[k]) values += `${sep}null`;
        else {
          const frag = parts[fi]!;
          values += sep + frag;
          if (frag === "null") nulls = true;
        }
      }
      let statuses = viewStatuses[f.viewIndex]!;
      if (nulls) {
        statuses = "";
        for (let r = 0; r < n; r++) {
          const sep = r ? "," : "";
          const k = slot[base + r]!;
          const parts = decoded[k];
          statuses += sep + (!parts ? S_NOT_FOUND : stale[k] ? S_OUTSIDE : parts[fi] === "null" ? S_NULL : S_PRESENT);
        }
      }
      out += `${first ? "" : ","}{"values":[${values}],"statuses":[${statuses}],"event_timestamps":[${viewTs[f.viewIndex]}]}`;
      first = false;
    }
    return `${out}]}`;
  }

  ping(): Promise<void> {
    return this.kv.ping();
  }

  close(): Promise<void> {
    return this.kv.close();
  }
}
