import { invalid } from "../errors.ts";
import type { KeyType } from "../registry/dtypes.ts";
import { type ResolvedRef, resolveFeatureRefs } from "../registry/feature-refs.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import { canonicalKey, EPOCH_TIMESTAMP, keyJson, ValueError } from "../values.ts";
import type { OnlineKv } from "./kv.ts";
import {
  encodeValue,
  entityPart,
  expireAtMs,
  FIRST_VALUE,
  HEADER_LAYOUT,
  HEADER_TS_JSON,
  onlineKey,
  SEP,
} from "./layout.ts";
import type { OnlineFeaturesRequest, OnlineReadOptions, OnlineStore, OnlineWriteRow, WriteResult } from "./store.ts";

interface ResolvedFeature extends ResolvedRef {
  /** Index of the view in the request's view list. */
  viewIndex: number;
}

const EPOCH_JSON = `"${EPOCH_TIMESTAMP}"`;
const S_PRESENT = '"PRESENT"';
const S_NOT_FOUND = '"NOT_FOUND"';
const S_NULL = '"NULL_VALUE"';
const S_OUTSIDE = '"OUTSIDE_MAX_AGE"';

/** The request's features (see resolveFeatureRefs), each with the index of its view among the views read. */
function resolveFeatures(snapshot: RegistrySnapshot, req: OnlineFeaturesRequest): ResolvedFeature[] {
  const viewIndex = new Map<CompiledView, number>();
  return resolveFeatureRefs(snapshot, req, { online: true }).map((f) => {
    let vi = viewIndex.get(f.view);
    if (vi === undefined) {
      vi = viewIndex.size;
      viewIndex.set(f.view, vi);
    }
    return { ...f, viewIndex: vi };
  });
}

const SEP_BYTE = SEP.charCodeAt(0);
const COMMA = 44;
const EPOCH_BYTES = Buffer.from(EPOCH_JSON, "latin1");
const NULL_BYTES = Buffer.from("null", "latin1");
const PRESENT_BYTES = Buffer.from(S_PRESENT, "latin1");
const NOT_FOUND_BYTES = Buffer.from(S_NOT_FOUND, "latin1");
const OUTSIDE_BYTES = Buffer.from(S_OUTSIDE, "latin1");
const OPEN_VALUES = Buffer.from('{"values":[', "latin1");
const OPEN_STATUSES = Buffer.from('],"statuses":[', "latin1");
const OPEN_TIMESTAMPS = Buffer.from('],"event_timestamps":[', "latin1");
const CLOSE_COLUMN = Buffer.from("]}", "latin1");
const CLOSE_ANSWER = Buffer.from("]}", "latin1");

/** An answer being written: a Buffer that grows by doubling. */
class ByteWriter {
  private buf: Buffer;
  private len = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity));
  }

  private grow(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + need));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  byte(c: number): void {
    if (this.len === this.buf.length) this.grow(1);
    this.buf[this.len++] = c;
  }

  /** Bytes [start, end) of `src`. */
  bytes(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.len + n > this.buf.length) this.grow(n);
    if (n <= 64) {
      // a short fragment (a feature value, an event time) copies faster in a loop than through a native call
      const b = this.buf;
      let p = this.len;
      for (let i = start; i < end; i++) b[p++] = src[i]!;
    } else src.copy(this.buf, this.len, start, end);
    this.len += n;
  }

  all(src: Buffer): void {
    const n = src.length;
    if (n <= 16) {
      this.bytes(src, 0, n);
      return;
    }
    if (this.len + n > this.buf.length) this.grow(n);
    this.buf.set(src, this.len);
    this.len += n;
  }

  text(s: string): void {
    const max = Buffer.byteLength(s, "utf8");
    if (this.len + max > this.buf.length) this.grow(max);
    this.len += this.buf.write(s, this.len, "utf8");
  }

  result(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/** The layout id of a view as bytes, to compare stored headers against without decoding them. */
const layoutCache = new WeakMap<CompiledView, Buffer>();
function layoutBytes(view: CompiledView): Buffer {
  let b = layoutCache.get(view);
  if (!b) {
    b = Buffer.from(view.layoutId, "utf8");
    layoutCache.set(view, b);
  }
  return b;
}

function sameBytes(b: Buffer, start: number, end: number, ref: Buffer): boolean {
  if (end - start !== ref.length) return false;
  for (let i = 0; i < ref.length; i++) if (b[start + i] !== ref[i]) return false;
  return true;
}

function isNullFragment(b: Buffer, start: number, end: number): boolean {
  return end - start === 4 && b[start] === 110 && b[start + 1] === 117 && b[start + 2] === 108 && b[start + 3] === 108;
}

/** A decimal integer (the stored event time, epoch microseconds: exact below 2^53) from its ASCII digits. */
function readInt(b: Buffer, start: number, end: number): number {
  let i = start;
  const negative = b[i] === 45;
  if (negative) i++;
  let v = 0;
  for (; i < end; i++) v = v * 10 + (b[i]! - 48);
  return negative ? -v : v;
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
  const lookup = { features, views, featureNamesJson: features.map((f) => JSON.stringify(f.name)).join(",") };
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
 * Answers are built as JSON bytes from the stored fragments (see layout.ts): the hot path parses no stored value, and
 * (over Redis) never even decodes one to a string: fragments are copied from the reply into the answer.
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
    return (await this.getOnlineFeaturesBytes(snapshot, req, opts)).toString("utf8");
  }

  async getOnlineFeaturesBytes(
    snapshot: RegistrySnapshot,
    req: OnlineFeaturesRequest,
    opts: OnlineReadOptions,
  ): Promise<Buffer> {
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
    const raw = this.kv.getManyBytes
      ? await this.kv.getManyBytes(keys)
      : (await this.kv.getMany(keys)).map((s) => (s === null || s === undefined ? null : Buffer.from(s, "utf8")));

    // ---- split each stored row once, in place: where its fields are, or why it is not answered ----
    // Field j of key k spans bytes [bounds[at[k] + j], bounds[at[k] + j + 1] - 1) of raw[k]; at[k] = -1: not answered.
    const nowMicros = (opts.nowMs ?? Date.now()) * 1000;
    const at = new Int32Array(keys.length);
    let boundsSize = 0;
    for (let k = 0; k < keys.length; k++) boundsSize += FIRST_VALUE + keyView[k]!.features.length + 1;
    const bounds = new Int32Array(boundsSize);
    const stale = new Uint8Array(keys.length);
    let o = 0;
    for (let k = 0; k < keys.length; k++) {
      const view = keyView[k]!;
      const fields = FIRST_VALUE + view.features.length;
      const b = raw[k];
      at[k] = -1;
      if (b === null || b === undefined) {
        o += fields + 1;
        continue;
      }
      let j = 0;
      bounds[o] = 0;
      const len = b.length;
      for (let i = 0; i < len; i++) {
        if (b[i] === SEP_BYTE) {
          if (++j === fields) break;
          bounds[o + j] = i + 1;
        }
      }
      bounds[o + fields] = len + 1;
      // A row written under an older schema of the view cannot be read by position: answer it as missing.
      if (
        j === fields - 1 &&
        sameBytes(b, bounds[o + HEADER_LAYOUT]!, bounds[o + HEADER_LAYOUT + 1]! - 1, layoutBytes(view))
      ) {
        at[k] = o;
        if (view.ttlSeconds > 0 && readInt(b, 0, bounds[o + 1]! - 1) < nowMicros - view.ttlSeconds * 1_000_000)
          stale[k] = 1;
      }
      o += fields + 1;
    }

    // ---- the answer, as bytes: stored fragments are copied, never decoded ----
    // A view's statuses and event times are the same for each of its features (but for NULL_VALUE): built once per view.
    const viewTs = new Array<Buffer>(views.length);
    const viewStatuses = new Array<Buffer>(views.length);
    for (let v = 0; v < views.length; v++) {
      if (n === 1) {
        // one entity row (the common online lookup): the stored bytes themselves, and a constant status
        const k = slot[v]!;
        const f = at[k]!;
        viewTs[v] =
          f < 0 ? EPOCH_BYTES : raw[k]!.subarray(bounds[f + HEADER_TS_JSON]!, bounds[f + HEADER_TS_JSON + 1]! - 1);
        viewStatuses[v] = f < 0 ? NOT_FOUND_BYTES : stale[k] ? OUTSIDE_BYTES : PRESENT_BYTES;
        continue;
      }
      const ts = new ByteWriter(n * 30 + 16);
      let statuses = "";
      for (let r = 0; r < n; r++) {
        const k = slot[v * n + r]!;
        const f = at[k]!;
        if (r) ts.byte(COMMA);
        if (f < 0) ts.all(EPOCH_BYTES);
        else ts.bytes(raw[k]!, bounds[f + HEADER_TS_JSON]!, bounds[f + HEADER_TS_JSON + 1]! - 1);
        statuses += (r ? "," : "") + (f < 0 ? S_NOT_FOUND : stale[k] ? S_OUTSIDE : S_PRESENT);
      }
      viewTs[v] = ts.result();
      viewStatuses[v] = Buffer.from(statuses, "latin1");
    }
    // What follows a column's values when none is null: the same for every feature of the view, so built once.
    const tails = new Array<Buffer | undefined>(views.length);
    const viewTail = (v: number): Buffer => {
      let tail = tails[v];
      if (!tail) {
        const st = viewStatuses[v]!;
        const ts = viewTs[v]!;
        const w = new ByteWriter(OPEN_STATUSES.length + st.length + OPEN_TIMESTAMPS.length + ts.length + 2);
        w.all(OPEN_STATUSES);
        w.all(st);
        w.all(OPEN_TIMESTAMPS);
        w.all(ts);
        w.all(CLOSE_COLUMN);
        tail = w.result();
        tails[v] = tail;
      }
      return tail;
    };
    let head = `{"metadata":{"feature_names":[`;
    for (let i = 0; i < entityNames.length; i++) head += `${i ? "," : ""}${JSON.stringify(entityNames[i])}`;
    head += `${featureNamesJson ? `,${featureNamesJson}` : ""}]},"results":[`;
    const allPresent = repeatJoined(S_PRESENT, n);
    const allEpoch = repeatJoined(EPOCH_JSON, n);
    for (let e = 0; e < entityNames.length; e++) {
      const col = columns.get(entityNames[e]!)!;
      let values = "";
      for (let r = 0; r < n; r++) values += (r ? "," : "") + keyJsonText(col.type, col.canonical[r]!);
      head += `${e ? "," : ""}{"values":[${values}],"statuses":[${allPresent}],"event_timestamps":[${allEpoch}]}`;
    }
    let estimate = head.length * 3 + 8;
    for (const f of features) estimate += 64 + n * 16 + viewTs[f.viewIndex]!.length + viewStatuses[f.viewIndex]!.length;
    const out = new ByteWriter(estimate);
    out.text(head);
    if (entityNames.length > 0 && features.length > 0) out.byte(COMMA);
    for (let c = 0; c < features.length; c++) {
      const f = features[c]!;
      const fi = FIRST_VALUE + f.feature.index;
      const base = f.viewIndex * n;
      if (c) out.byte(COMMA);
      out.all(OPEN_VALUES);
      let nulls = false;
      for (let r = 0; r < n; r++) {
        if (r) out.byte(COMMA);
        const k = slot[base + r]!;
        const o = at[k]!;
        if (o < 0 || stale[k]) out.all(NULL_BYTES);
        else {
          const b = raw[k]!;
          const start = bounds[o + fi]!;
          const end = bounds[o + fi + 1]! - 1;
          out.bytes(b, start, end);
          if (isNullFragment(b, start, end)) nulls = true;
        }
      }
      if (nulls) {
        out.all(OPEN_STATUSES);
        let statuses = "";
        for (let r = 0; r < n; r++) {
          const k = slot[base + r]!;
          const o = at[k]!;
          let status = S_PRESENT;
          if (o < 0) status = S_NOT_FOUND;
          else if (stale[k]) status = S_OUTSIDE;
          else if (isNullFragment(raw[k]!, bounds[o + fi]!, bounds[o + fi + 1]! - 1)) status = S_NULL;
          statuses += (r ? "," : "") + status;
        }
        out.text(statuses);
        out.all(OPEN_TIMESTAMPS);
        out.all(viewTs[f.viewIndex]!);
        out.all(CLOSE_COLUMN);
      } else out.all(viewTail(f.viewIndex));
    }
    out.all(CLOSE_ANSWER);
    return out.result();
  }

  ping(): Promise<void> {
    return this.kv.ping();
  }

  close(): Promise<void> {
    return this.kv.close();
  }
}
