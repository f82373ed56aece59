/**
 * Values at the edges: parsing what clients and Postgres hand us into the one canonical form per dtype,
 * and the canonical text of entity keys. Shared by the online store, the offline store and the routes.
 */
import { type Dtype, elementOf, isList, type KeyType, type ScalarDtype } from "./registry/dtypes.ts";

export class ValueError extends Error {
  override name = "ValueError";
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const DECIMAL = /^-?\d+$/;
const NUMERIC = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  if (typeof v === "object") return "an object";
  return String(v);
}

/** An int64 as JSON: a number when it is safe, else its decimal text. */
export function int64Json(b: bigint): number | string {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString();
}

function parseInt64(v: unknown): bigint {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v))
      throw new ValueError(`${v} is not a safe integer; send an int64 beyond 2^53-1 as a decimal string`);
    return BigInt(v);
  }
  if (typeof v === "bigint") {
    if (v < INT64_MIN || v > INT64_MAX) throw new ValueError(`${v} does not fit int64`);
    return v;
  }
  if (typeof v === "string") {
    const s = v.trim();
    if (DECIMAL.test(s)) {
      const b = BigInt(s);
      if (b < INT64_MIN || b > INT64_MAX) throw new ValueError(`${describe(v)} does not fit int64`);
      return b;
    }
    // "42.0", as pandas writes integral floats
    if (NUMERIC.test(s)) {
      const n = Number(s);
      if (Number.isSafeInteger(n)) return BigInt(n);
    }
  }
  throw new ValueError(`${describe(v)} is not an integer`);
}

function parseInt32(v: unknown): number {
  // a safe integer (what JSON and Postgres hand over) is checked without a BigInt: this runs per value in bulk writes
  if (typeof v === "number" && Number.isSafeInteger(v)) {
    if (v < INT32_MIN || v > INT32_MAX) throw new ValueError(`${describe(v)} does not fit int32`);
    return v === 0 ? 0 : v; // -0 is 0
  }
  const b = parseInt64(v);
  if (b < BigInt(INT32_MIN) || b > BigInt(INT32_MAX)) throw new ValueError(`${describe(v)} does not fit int32`);
  return Number(b);
}

function parseFloatValue(v: unknown): number {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && NUMERIC.test(v)) return Number(v);
  if (typeof v === "string" && /^\s*[-+]?(nan|inf|infinity)\s*$/i.test(v))
    throw new ValueError(`${describe(v)} is not a finite number`);
  throw new ValueError(`${describe(v)} is not a number`);
}

function parseBytes(v: unknown): string {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (typeof v === "string" && v.length % 4 === 0 && BASE64.test(v)) return v;
  throw new ValueError(`${describe(v)} is not base64-encoded bytes`);
}

function parseBool(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  if (v === "true" || v === "True") return true;
  if (v === "false" || v === "False") return false;
  throw new ValueError(`${describe(v)} is not a boolean`);
}

// ---- timestamps ----

const TS_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$/;

// Years 0001 to 9999: what a four-digit ISO year writes and Postgres stores; beyond, Date cannot format the value.
const MIN_MICROS = Date.parse("0001-01-01T00:00:00Z") * 1000;
const MAX_MICROS = Date.parse("9999-12-31T23:59:59.999Z") * 1000 + 999;

function inRange(micros: number, v: unknown): number {
  if (!(micros >= MIN_MICROS && micros <= MAX_MICROS))
    throw new ValueError(`${describe(v)} is out of range (timestamps run from year 0001 to 9999)`);
  return micros;
}

/**
 * Parses an RFC 3339 / ISO-8601 timestamp (T or a space, as pandas writes; no zone = UTC) or epoch seconds,
 * to epoch microseconds. Microseconds are kept: Postgres and pandas both carry them.
 */
export function parseTimestampMicros(v: unknown): number {
  if (v instanceof Date) {
    const ms = v.getTime();
    if (Number.isNaN(ms)) throw new ValueError("invalid date");
    return inRange(ms * 1000, v);
  }
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new ValueError(`${v} is not a timestamp`);
    return inRange(Math.round(v * 1_000_000), v);
  }
  if (typeof v !== "string") throw new ValueError(`${describe(v)} is not a timestamp`);
  const m = TS_RE.exec(v.trim());
  if (!m) throw new ValueError(`${describe(v)} is not an ISO-8601 timestamp`);
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone] = m;
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    throw new ValueError(`${describe(v)} is not a valid timestamp`);
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  // setUTCFullYear: Date.UTC reads years 0–99 as 1900–1999
  date.setUTCFullYear(Number(y), month - 1, day);
  let ms = date.getTime();
  if (date.getUTCDate() !== day) throw new ValueError(`${describe(v)} is not a valid date`);
  if (zone && zone !== "Z" && zone !== "z" && zone !== "UTC") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const offsetH = Number(digits.slice(0, 2));
    const offsetM = Number(digits.slice(2) || "0");
    if (offsetH > 23 || offsetM > 59) throw new ValueError(`${describe(v)} has an invalid UTC offset`);
    const offsetMin = offsetH * 60 + offsetM;
    ms -= sign * offsetMin * 60_000;
  }
  const micros = Number(`${frac}000000`.slice(0, 6));
  return inRange(ms * 1000 + micros, v);
}

/** `2021-12-31T23:00:00Z`, with a fraction only when there is one: the form Feast answers with. */
export function formatTimestampMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const rest = micros - ms * 1000;
  const iso = new Date(ms).toISOString(); // 2021-12-31T23:00:00.000Z
  const base = iso.slice(0, 19);
  const msPart = iso.slice(20, 23);
  if (msPart === "000" && rest === 0) return `${base}Z`;
  const frac = `${msPart}${String(rest).padStart(3, "0")}`.replace(/0+$/, "");
  return `${base}.${frac}Z`;
}

/**
 * Every timestamp an answer carries (feature values, jobs, registry objects, API keys, CSV exports): RFC 3339 in UTC with
 * 'Z', the fraction only when it is not zero. Dates from the database come through here, never through toISOString.
 */
export function formatTimestamp(t: Date | string): string {
  const ms = (t instanceof Date ? t : new Date(t)).getTime();
  return formatTimestampMicros(ms * 1000);
}

export const EPOCH_TIMESTAMP = "1970-01-01T00:00:00Z";

// ---- feature values ----

function normalizeScalar(dtype: ScalarDtype, v: unknown): unknown {
  switch (dtype) {
    case "int32":
      return parseInt32(v);
    case "int64":
      if (typeof v === "number" && Number.isSafeInteger(v)) return v === 0 ? 0 : v; // int64Json's answer, sans BigInt
      return int64Json(parseInt64(v));
    case "float32":
    case "float64":
      return parseFloatValue(v);
    case "string":
      if (typeof v === "string") return v;
      throw new ValueError(`${describe(v)} is not a string`);
    case "bytes":
      return parseBytes(v);
    case "bool":
      return parseBool(v);
    case "unix_timestamp": {
      // epoch seconds, as Feast writes them; sub-second precision is kept as a fraction
      const micros = parseTimestampMicros(v);
      return micros % 1_000_000 === 0 ? micros / 1_000_000 : micros / 1_000_000;
    }
    case "json":
      return v;
  }
}

/**
 * Checks a value against its dtype and returns its canonical JSON form (the form stored and served).
 * null stays null. Throws ValueError naming what is wrong.
 */
export function normalizeValue(dtype: Dtype, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (isList(dtype)) {
    const el = elementOf(dtype);
    let arr = v;
    if (typeof arr === "string" && el !== "string" && arr.trim().startsWith("[")) {
      try {
        arr = JSON.parse(arr);
      } catch {
        throw new ValueError(`${describe(v)} is not a list`);
      }
    }
    if (!Array.isArray(arr)) throw new ValueError(`${describe(v)} is not a list`);
    return arr.map((x, i) => {
      if (x === null) return null;
      try {
        return normalizeScalar(el, x);
      } catch (e) {
        throw new ValueError(`element ${i}: ${(e as Error).message}`);
      }
    });
  }
  return normalizeScalar(dtype as ScalarDtype, v);
}

// ---- entity keys ----

/** The canonical text of an entity key: `1001` and `"1001"` give the same text for an int64 entity. */
export function canonicalKey(type: KeyType, v: unknown): string {
  switch (type) {
    case "int64":
      if (typeof v === "number" && Number.isSafeInteger(v)) return String(v); // the same text, without a BigInt
      return parseInt64(v).toString();
    case "int32":
      return String(parseInt32(v));
    case "string":
      if (typeof v === "string") return v;
      if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
      throw new ValueError(`${describe(v)} is not a string`);
    case "bytes":
      return parseBytes(v);
  }
}

/** The JSON form of a canonical key, as it is answered in the join key column. */
export function keyJson(type: KeyType, canonical: string): unknown {
  return type === "int64" || type === "int32" ? int64Json(BigInt(canonical)) : canonical;
}
