import { z } from "zod";
import { MISSING } from "../errors.ts";

export const SCALAR_DTYPES = [
  "int32",
  "int64",
  "float32",
  "float64",
  "string",
  "bytes",
  "bool",
  "unix_timestamp",
  "json",
] as const;
export type ScalarDtype = (typeof SCALAR_DTYPES)[number];
export type Dtype = ScalarDtype | `${ScalarDtype}[]`;

export const ALL_DTYPES: readonly Dtype[] = [...SCALAR_DTYPES, ...SCALAR_DTYPES.map((d) => `${d}[]` as Dtype)];

/** Feast spells types `Int64`, `Float32`, `UnixTimestamp`, `Array(Float32)`: those spellings are accepted too. */
function normalizeTypeName(v: unknown): unknown {
  if (typeof v !== "string") return v;
  let s = v.trim();
  const arr = /^array\((.*)\)$/i.exec(s);
  if (arr) s = `${arr[1]}[]`;
  return s.toLowerCase().replace(/^unixtimestamp/, "unix_timestamp");
}

export const DtypeSchema = z.preprocess(
  normalizeTypeName,
  z.enum(ALL_DTYPES as [Dtype, ...Dtype[]], {
    error: (iss) =>
      iss.input === undefined
        ? MISSING
        : `unknown dtype ${JSON.stringify(iss.input)}; expected one of ${SCALAR_DTYPES.join(", ")} or a list such as float32[]`,
  }),
);

/** Types an entity's join key may have: the ones with an exact, canonical text form. */
export const KEY_TYPES = ["int32", "int64", "string", "bytes"] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export const KeyTypeSchema = z.preprocess(
  normalizeTypeName,
  z.enum(KEY_TYPES, {
    error: (iss) =>
      iss.input === undefined
        ? MISSING
        : `unsupported value_type ${JSON.stringify(iss.input)}; expected one of ${KEY_TYPES.join(", ")}`,
  }),
);

export function isList(d: Dtype): d is `${ScalarDtype}[]` {
  return d.endsWith("[]");
}
export function elementOf(d: Dtype): ScalarDtype {
  return (isList(d) ? d.slice(0, -2) : d) as ScalarDtype;
}

const TTL_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Parses `86400`, `"86400"`, `"30s"`, `"1h30m"`, `"7d"` to seconds; `0` means never stale. */
export function parseTtl(v: number | string): number | undefined {
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 ? v : undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const re = /(\d+)\s*([smhdw])/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  // biome-ignore lint/suspicious/noAssignInExpressions: a plain regex scan
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (TTL_UNITS[m[2]!] ?? 0);
    consumed = re.lastIndex;
  }
  return consumed === s.length && consumed > 0 ? total : undefined;
}
