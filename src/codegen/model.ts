/**
 * What `larder codegen` generates from, and what `larder codegen --check` compares: one accessor per online feature
 * view and per feature service, with its entity keys and features typed by the registry. The manifest (this model,
 * as JSON) is written into the generated file's header, so a check needs nothing but that file and the registry.
 */
import { z } from "zod";
import { type Dtype, DtypeSchema, elementOf, type KeyType, KeyTypeSchema } from "../registry/dtypes.ts";
import type { RegistrySnapshot } from "../registry/snapshot.ts";

export const AccessorKey = z.object({
  name: z.string(),
  value_type: KeyTypeSchema,
  entity: z.string(),
  description: z.string().optional(),
});
export const AccessorFeature = z.object({
  /** `view:feature`, as lookups name it. */
  ref: z.string(),
  /** The column name in the answer (`feature`, or `view__feature` when the accessor uses full names). */
  column: z.string(),
  dtype: DtypeSchema,
  description: z.string().optional(),
});
export const Accessor = z.object({
  kind: z.enum(["view", "service"]),
  name: z.string(),
  description: z.string().optional(),
  ttl_seconds: z.number().optional(),
  full_feature_names: z.boolean(),
  keys: z.array(AccessorKey),
  features: z.array(AccessorFeature),
});
export type Accessor = z.infer<typeof Accessor>;

export const Manifest = z.object({
  project: z.string(),
  registry_version: z.number().int(),
  lang: z.enum(["typescript", "python"]),
  accessors: z.array(Accessor),
});
export type Manifest = z.infer<typeof Manifest>;

export const LANGS = ["typescript", "python"] as const;
export type Lang = (typeof LANGS)[number];

/** The file each language's accessors go to, in the output directory. */
export const OUTPUT_FILE: Record<Lang, string> = { typescript: "larder-features.ts", python: "larder_features.py" };

/** The header line that carries the manifest (after the language's comment marker). */
export const MANIFEST_MARK = "larder-manifest: ";

export interface BuildOptions {
  lang: Lang;
  /** Only these feature services (and no views); default: every online view and every service. */
  services?: string[];
}

/** The accessors of a registry snapshot. Unknown services in `services` are an error naming them. */
export function buildManifest(snap: RegistrySnapshot, opts: BuildOptions): Manifest {
  const accessors: Accessor[] = [];
  const keyOf = (e: { joinKey: string; valueType: KeyType; name: string; spec: { description?: string } }) => ({
    name: e.joinKey,
    value_type: e.valueType,
    entity: e.name,
    ...(e.spec.description ? { description: e.spec.description } : {}),
  });
  const describe = (d: string | undefined) => (d ? { description: d } : {});
  if (!opts.services) {
    for (const v of [...snap.views.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      // an offline-only view has no online values to look up
      if (!v.online) continue;
      accessors.push({
        kind: "view",
        name: v.name,
        ...describe(v.spec.description),
        ttl_seconds: v.ttlSeconds,
        full_feature_names: false,
        keys: v.entities.map(keyOf),
        features: v.features.map((f) => ({
          ref: `${v.name}:${f.name}`,
          column: f.name,
          dtype: f.dtype as Dtype,
          ...describe(v.spec.schema[f.index]?.description),
        })),
      });
    }
  }
  const wanted = opts.services ?? [...snap.services.keys()].sort();
  const unknown = wanted.filter((s) => !snap.services.has(s));
  if (unknown.length) throw new Error(`no feature service ${unknown.join(", ")} in project ${snap.project}`);
  for (const name of wanted) {
    const s = snap.services.get(name)!;
    const keys = new Map<string, ReturnType<typeof keyOf>>();
    for (const { view } of s.features)
      for (const e of view.entities) if (!keys.has(e.joinKey)) keys.set(e.joinKey, keyOf(e));
    // Short names unless two features of the service share one (the server would refuse them without full names).
    const counts = new Map<string, number>();
    for (const { feature } of s.features) counts.set(feature.name, (counts.get(feature.name) ?? 0) + 1);
    const full = [...counts.values()].some((n) => n > 1);
    accessors.push({
      kind: "service",
      name,
      ...describe(s.spec.description),
      full_feature_names: full,
      keys: [...keys.values()],
      features: s.features.map(({ view, feature }) => ({
        ref: `${view.name}:${feature.name}`,
        column: full ? `${view.name}__${feature.name}` : feature.name,
        dtype: feature.dtype as Dtype,
        ...describe(view.spec.schema[feature.index]?.description),
      })),
    });
  }
  return { project: snap.project, registry_version: snap.version, lang: opts.lang, accessors };
}

/**
 * What makes code generated from `old` wrong against the registry now: an accessor's view or service gone, a feature
 * gone (or no longer in its service) or retyped, an entity key gone or retyped. New objects and features are not.
 */
export function incompatibilities(old: Manifest, snap: RegistrySnapshot): string[] {
  const problems: string[] = [];
  for (const a of old.accessors) {
    const now = currentFeatures(a, snap);
    if (!now) {
      problems.push(`feature ${a.kind} ${a.name} no longer exists`);
      continue;
    }
    for (const k of a.keys) {
      const e = now.keys.get(k.name);
      if (!e) problems.push(`${a.kind} ${a.name}: entity key ${k.name} is no longer one of its keys`);
      else if (e !== k.value_type)
        problems.push(`${a.kind} ${a.name}: entity key ${k.name} is now ${e} (was ${k.value_type})`);
    }
    for (const newKey of now.keys.keys())
      if (!a.keys.some((k) => k.name === newKey))
        problems.push(`${a.kind} ${a.name}: needs a new entity key ${newKey}`);
    for (const f of a.features) {
      const dtype = now.features.get(f.ref);
      if (!dtype)
        problems.push(
          a.kind === "service" && snap.views.get(f.ref.split(":")[0]!)?.featureByName.has(f.ref.split(":")[1]!)
            ? `service ${a.name}: feature ${f.ref} is no longer in the service`
            : `${a.kind} ${a.name}: feature ${f.ref} no longer exists`,
        );
      else if (dtype !== f.dtype)
        problems.push(`${a.kind} ${a.name}: feature ${f.ref} is now ${dtype} (was ${f.dtype})`);
    }
  }
  return problems;
}

function currentFeatures(
  a: Accessor,
  snap: RegistrySnapshot,
): { keys: Map<string, string>; features: Map<string, string> } | undefined {
  if (a.kind === "view") {
    const v = snap.views.get(a.name);
    if (!v) return undefined;
    return {
      keys: new Map(v.entities.map((e) => [e.joinKey, e.valueType])),
      features: new Map(v.features.map((f) => [`${v.name}:${f.name}`, f.dtype])),
    };
  }
  const s = snap.services.get(a.name);
  if (!s) return undefined;
  const keys = new Map<string, string>();
  for (const { view } of s.features) for (const e of view.entities) keys.set(e.joinKey, e.valueType);
  return {
    keys,
    features: new Map(s.features.map(({ view, feature }) => [`${view.name}:${feature.name}`, feature.dtype])),
  };
}

/**
 * The base of an accessor's type names (`DriverHourlyStats` → `DriverHourlyStatsKey`, `…Row`): its name in Pascal
 * case, with `Service` after a service's when a view of the same name has accessors too.
 */
export function typeBase(a: Accessor, m: Manifest): string {
  const clash = a.kind === "service" && m.accessors.some((o) => o.kind === "view" && pascal(o.name) === pascal(a.name));
  return pascal(a.name) + (clash ? "Service" : "");
}

/** The answer columns of an accessor that hold int64 values (join keys and features, lists too). */
export function int64Columns(a: Accessor): string[] {
  return [
    ...a.keys.filter((k) => k.value_type === "int64").map((k) => k.name),
    ...a.features.filter((f) => elementOf(f.dtype) === "int64").map((f) => f.column),
  ];
}

/** `driver_hourly_stats` → `DriverHourlyStats`. */
export function pascal(name: string): string {
  return name
    .split("_")
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join("");
}

/** `driver_hourly_stats` → `driverHourlyStats` (a leading underscore is kept). */
export function camel(name: string): string {
  const p = pascal(name);
  const lead = /^_+/.exec(name)?.[0] ?? "";
  return lead + (p ? p[0]!.toLowerCase() + p.slice(1) : "");
}

/** The manifest in a generated file's text, or undefined when it carries none. */
export function readManifest(text: string): Manifest | undefined {
  const line = text.split("\n").find((l) => l.includes(MANIFEST_MARK));
  if (!line) return undefined;
  return Manifest.parse(JSON.parse(line.slice(line.indexOf(MANIFEST_MARK) + MANIFEST_MARK.length)));
}
