/**
 * A spec as a flat list of fields for a side-by-side view: `ttl`, `schema[conv_rate].dtype`, `tags.team`. Lists of named
 * objects (a view's schema, a service's features) are keyed by name, as `diffSpecs` compares them, so a reordered or
 * retyped feature lines up with its old self; lists of plain values stay whole.
 */
export function specFields(spec: unknown, prefix = "", out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(spec)) {
    const named = spec.length > 0 && spec.every((x) => x && typeof x === "object" && typeof x.name === "string");
    const byView =
      spec.length > 0 && spec.every((x) => x && typeof x === "object" && typeof x.feature_view === "string");
    if (named || byView) {
      for (const item of spec as Record<string, unknown>[]) {
        const key = String(named ? item.name : item.feature_view);
        const rest = { ...item };
        if (named) delete rest.name;
        else delete rest.feature_view;
        const at = `${prefix}[${key}]`;
        if (Object.keys(rest).length === 0) out.set(at, "✓");
        else specFields(rest, at, out);
      }
      return out;
    }
    out.set(prefix, JSON.stringify(spec));
    return out;
  }
  if (spec && typeof spec === "object") {
    const entries = Object.entries(spec as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) {
      out.set(prefix, "{}");
      return out;
    }
    for (const [k, v] of entries) specFields(v, prefix ? `${prefix}.${k}` : k, out);
    return out;
  }
  out.set(prefix, typeof spec === "string" ? spec : JSON.stringify(spec));
  return out;
}

export type FieldRow = {
  field: string;
  a: string | undefined;
  b: string | undefined;
  change: "same" | "changed" | "added" | "removed";
};

/** Both specs' fields side by side, in the order of the older one with the newer one's additions after. */
export function sideBySide(a: unknown, b: unknown): FieldRow[] {
  const fa = a == null ? new Map<string, string>() : specFields(a);
  const fb = b == null ? new Map<string, string>() : specFields(b);
  const keys = [...fa.keys(), ...[...fb.keys()].filter((k) => !fa.has(k))];
  return keys.map((field) => {
    const va = fa.get(field);
    const vb = fb.get(field);
    const change = va === undefined ? "added" : vb === undefined ? "removed" : va === vb ? "same" : "changed";
    return { field, a: va, b: vb, change };
  });
}
