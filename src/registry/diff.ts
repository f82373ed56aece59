import type { ObjectKind } from "./definitions.ts";

export type ChangeAction = "create" | "update" | "delete" | "unchanged";

export interface FieldChange {
  /** e.g. `ttl`, `schema.conv_rate.dtype`, `entities` */
  field: string;
  from?: unknown;
  to?: unknown;
}

export interface ObjectChange {
  kind: ObjectKind;
  name: string;
  action: ChangeAction;
  fields: FieldChange[];
  /** Why this change would make online data already stored unreadable; empty when it would not. */
  breaking: string[];
}

export function stableStringify(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableStringify(x)}`).join(",")}}`;
}

export const deepEqual = (a: unknown, b: unknown) => stableStringify(a) === stableStringify(b);

type Spec = Record<string, unknown>;

/** Arrays of named objects (a view's schema) are compared by name, so a reorder or one changed dtype reads plainly. */
function isNamedList(v: unknown): v is { name: string }[] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.every((x) => x && typeof x === "object" && typeof (x as Spec).name === "string")
  );
}

function diffValue(path: string, from: unknown, to: unknown, out: FieldChange[]) {
  if (deepEqual(from, to)) return;
  if (isNamedList(from) && isNamedList(to)) {
    const a = new Map(from.map((x) => [x.name, x]));
    const b = new Map(to.map((x) => [x.name, x]));
    for (const [name, x] of a) {
      const y = b.get(name);
      if (!y) out.push({ field: `${path}.${name}`, from: x });
      else diffValue(`${path}.${name}`, x, y, out);
    }
    for (const [name, y] of b) if (!a.has(name)) out.push({ field: `${path}.${name}`, to: y });
    const orderA = from.map((x) => x.name).filter((n) => b.has(n));
    const orderB = to.map((x) => x.name).filter((n) => a.has(n));
    if (!deepEqual(orderA, orderB)) out.push({ field: `${path}[order]`, from: orderA, to: orderB });
    return;
  }
  if (from && to && typeof from === "object" && typeof to === "object" && !Array.isArray(from) && !Array.isArray(to)) {
    const keys = new Set([...Object.keys(from), ...Object.keys(to)]);
    for (const k of [...keys].sort()) diffValue(path ? `${path}.${k}` : k, (from as Spec)[k], (to as Spec)[k], out);
    return;
  }
  out.push({ field: path, from, to });
}

export function diffSpecs(from: Spec, to: Spec): FieldChange[] {
  const out: FieldChange[] = [];
  diffValue("", from, to, out);
  return out;
}

/** Changes that stored online values can't survive: their keys or their decoding would change. */
export function breakingReasons(kind: ObjectKind, fields: FieldChange[]): string[] {
  const reasons: string[] = [];
  for (const f of fields) {
    if (kind === "entity" && (f.field === "join_key" || f.field === "value_type"))
      reasons.push(`${f.field} changes: online values stored under the old key can no longer be found`);
    if (kind === "feature_view") {
      if (/^schema\.[^.]+\.dtype$/.test(f.field))
        reasons.push(`${f.field.split(".")[1]} changes dtype: values stored online must be re-materialised`);
      if (f.field === "entities") reasons.push("entities change: online values are keyed by the old entity set");
    }
  }
  return reasons;
}
