import type { KeyType } from "../registry/dtypes.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import { EPOCH_TIMESTAMP, keyJson } from "../values.ts";
import { ByteWriter } from "./byte-writer.ts";
import { entityRows } from "./entity-rows.ts";
import type { OnlineKv } from "./kv.ts";
import { entityKeyHead, entityPart, FIRST_VALUE, HEADER_LAYOUT, HEADER_TS_JSON, SEP, viewKey } from "./layout.ts";
import { resolveLookup } from "./lookup-plan.ts";
import { bucketOf } from "./slot-buckets.ts";
import type { OnlineFeaturesRequest, OnlineReadOptions } from "./store.ts";

const EPOCH_JSON = `"${EPOCH_TIMESTAMP}"`;
const S_PRESENT = '"PRESENT"';
const S_NOT_FOUND = '"NOT_FOUND"';
const S_NULL = '"NULL_VALUE"';
const S_OUTSIDE = '"OUTSIDE_MAX_AGE"';

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

/**
 * Answers a lookup as the JSON bytes of the Feast-shaped response, built from the stored fragments (see layout.ts): the
 * hot path parses no stored value, and (over Redis) never even decodes one to a string: fragments are copied from the
 * reply into the answer.
 */
export async function lookupBytes(
  kv: OnlineKv,
  prefix: string,
  snapshot: RegistrySnapshot,
  req: OnlineFeaturesRequest,
  opts: OnlineReadOptions,
): Promise<Buffer> {
  const { features, views, featureNamesJson, perView } = resolveLookup(snapshot, req);

  const { entityNames, n, columns } = entityRows(snapshot, req.entities, views, opts.maxEntityRows);

  // ---- one read for every (view, entity row); repeated rows share a key ----
  const keyIndex = new Map<string, number>();
  const keys: string[] = [];
  const keyView: CompiledView[] = [];
  // each key's slot bucket, known here from its entity: the backend groups keys by it (a cluster) without rehashing them
  const keyBucket = new Uint8Array(views.length * n);
  const slot = new Int32Array(views.length * n);
  // each row's key head (entity part and slot bucket), once per set of join keys: views of one entity share it
  const headsByJoinKeys = new Map<string, { heads: string[]; buckets: Uint8Array }>();
  for (let v = 0; v < views.length; v++) {
    const view = views[v]!;
    const joinKeys = view.joinKeys.join(",");
    let rows = headsByJoinKeys.get(joinKeys);
    if (!rows) {
      rows = { heads: new Array<string>(n), buckets: new Uint8Array(n) };
      const keyCols = view.joinKeys.map((k) => columns.get(k)!.canonical);
      const parts = new Array<string>(keyCols.length);
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < keyCols.length; j++) parts[j] = keyCols[j]![r]!;
        const entity = entityPart(view.joinKeys, parts);
        const bucket = bucketOf(entity);
        rows.buckets[r] = bucket;
        rows.heads[r] = entityKeyHead(prefix, snapshot.project, entity, bucket);
      }
      headsByJoinKeys.set(joinKeys, rows);
    }
    const { heads, buckets } = rows;
    for (let r = 0; r < n; r++) {
      const key = viewKey(heads[r]!, view.name);
      let idx = keyIndex.get(key);
      if (idx === undefined) {
        idx = keys.length;
        keys.push(key);
        keyView.push(view);
        keyBucket[idx] = buckets[r]!;
        keyIndex.set(key, idx);
      }
      slot[v * n + r] = idx;
    }
  }
  const raw = kv.getManyBytes
    ? await kv.getManyBytes(keys, keyBucket.subarray(0, keys.length))
    : (await kv.getMany(keys)).map((s) => (s === null || s === undefined ? null : Buffer.from(s, "utf8")));

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
  // Entity rows per view and status (present, not found, outside max age), counted only when someone listens: the
  // statuses are known here anyway, and a view's features share its rows' statuses (but for NULL_VALUE, counted below).
  const countStatuses = opts.onStatuses;
  const rowStatus = countStatuses ? new Int32Array(views.length * 3) : undefined;
  const nullValues = countStatuses ? new Int32Array(views.length) : undefined;
  for (let v = 0; v < views.length; v++) {
    if (n === 1) {
      // one entity row (the common online lookup): the stored bytes themselves, and a constant status
      const k = slot[v]!;
      const f = at[k]!;
      viewTs[v] =
        f < 0 ? EPOCH_BYTES : raw[k]!.subarray(bounds[f + HEADER_TS_JSON]!, bounds[f + HEADER_TS_JSON + 1]! - 1);
      viewStatuses[v] = f < 0 ? NOT_FOUND_BYTES : stale[k] ? OUTSIDE_BYTES : PRESENT_BYTES;
      if (rowStatus) rowStatus[v * 3 + (f < 0 ? 1 : stale[k] ? 2 : 0)]!++;
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
      if (rowStatus) rowStatus[v * 3 + (f < 0 ? 1 : stale[k] ? 2 : 0)]!++;
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
        else if (isNullFragment(raw[k]!, bounds[o + fi]!, bounds[o + fi + 1]! - 1)) {
          status = S_NULL;
          if (nullValues) nullValues[f.viewIndex]!++;
        }
        statuses += (r ? "," : "") + status;
      }
      out.text(statuses);
      out.all(OPEN_TIMESTAMPS);
      out.all(viewTs[f.viewIndex]!);
      out.all(CLOSE_COLUMN);
    } else out.all(viewTail(f.viewIndex));
  }
  out.all(CLOSE_ANSWER);
  if (countStatuses && rowStatus && nullValues)
    for (let v = 0; v < views.length; v++) {
      const per = perView[v]!;
      const nulls = nullValues[v]!;
      countStatuses(
        views[v]!,
        per * rowStatus[v * 3]! - nulls,
        per * rowStatus[v * 3 + 1]!,
        nulls,
        per * rowStatus[v * 3 + 2]!,
      );
    }
  return out.result();
}
