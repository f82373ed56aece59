import type { z } from "zod";
import type { ErrorDetail } from "../errors.ts";
import {
  DataSourceSpec,
  Definitions,
  EntitySpec,
  FeatureServiceSpec,
  FeatureViewSpec,
  type PostgresSourceSpec,
} from "./definitions.ts";
import { type Dtype, elementOf, isList, type KeyType } from "./dtypes.ts";

export type Problem = ErrorDetail & { path: string };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || "(root)";
}

export function zodProblems(error: z.ZodError, prefix: readonly PropertyKey[] = []): Problem[] {
  return error.issues.map((i) => {
    let message = i.message;
    if (i.code === "unrecognized_keys") message = `unknown field${i.keys.length > 1 ? "s" : ""}: ${i.keys.join(", ")}`;
    return { path: formatPath([...prefix, ...i.path]), message };
  });
}

/** Column name → Postgres type name (`int8`, `float4`, `_float4` for arrays, `timestamptz`, …). */
export type ColumnTypes = Map<string, string>;

/** Looks at a source's table or query in the offline database; `undefined` with a reason when it can't. */
export type SourceIntrospector = (source: PostgresSourceSpec) => Promise<{ columns: ColumnTypes } | { error: string }>;

const INT_TYPES = new Set(["int2", "int4", "int8", "numeric"]);
const FLOAT_TYPES = new Set(["float4", "float8", "numeric", "int2", "int4", "int8"]);
const TEXT_TYPES = new Set(["text", "varchar", "bpchar", "name", "uuid", "citext"]);
const TIME_TYPES = new Set(["timestamp", "timestamptz", "date"]);

function scalarCompatible(dtype: string, pgType: string): boolean {
  switch (dtype) {
    case "int32":
      return pgType === "int2" || pgType === "int4";
    case "int64":
      return INT_TYPES.has(pgType);
    case "float32":
    case "float64":
      return FLOAT_TYPES.has(pgType);
    case "string":
      return TEXT_TYPES.has(pgType);
    case "bytes":
      return pgType === "bytea";
    case "bool":
      return pgType === "bool";
    case "unix_timestamp":
      return TIME_TYPES.has(pgType) || INT_TYPES.has(pgType) || FLOAT_TYPES.has(pgType);
    case "json":
      return pgType === "json" || pgType === "jsonb" || TEXT_TYPES.has(pgType);
    default:
      return false;
  }
}

export function dtypeCompatible(dtype: Dtype, pgType: string): boolean {
  if (pgType === "json" || pgType === "jsonb") return dtype === "json" || isList(dtype);
  if (isList(dtype)) return pgType.startsWith("_") && scalarCompatible(elementOf(dtype), pgType.slice(1));
  return scalarCompatible(dtype, pgType);
}

export function keyCompatible(type: KeyType, pgType: string): boolean {
  if (type === "int32" || type === "int64") return pgType === "int2" || pgType === "int4" || pgType === "int8";
  if (type === "bytes") return pgType === "bytea";
  return TEXT_TYPES.has(pgType) || pgType === "int2" || pgType === "int4" || pgType === "int8";
}

function duplicates<T extends { name: string }>(
  items: T[],
  section: string,
  problems: Problem[],
  ix: (i: number) => number,
) {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.name);
    if (first !== undefined)
      problems.push({
        path: `${section}[${ix(i)}].name`,
        message: `duplicate name ${item.name} (also at ${section}[${ix(first)}])`,
      });
    else seen.set(item.name, i);
  });
}

type Section = "entities" | "data_sources" | "feature_views" | "feature_services";
/** Index of an object in the parsed arrays → its index in the file (they differ when malformed objects were left out). */
type IndexMap = Record<Section, (i: number) => number>;
const same = (i: number) => i;
const IDENTITY_INDEX: IndexMap = { entities: same, data_sources: same, feature_views: same, feature_services: same };

const SECTION_SCHEMAS = {
  entities: EntitySpec,
  data_sources: DataSourceSpec,
  feature_views: FeatureViewSpec,
  feature_services: FeatureServiceSpec,
} as const;

/** The well-formed objects of a file that failed to parse as a whole; undefined when its outline is wrong. */
function parseWellFormed(input: unknown): { defs: Definitions; ix: IndexMap; invalidNames: Set<string> } | undefined {
  if (!input || typeof input !== "object" || Array.isArray(input)) return undefined;
  const raw = input as Record<string, unknown>;
  const defs: Definitions = { entities: [], data_sources: [], feature_views: [], feature_services: [] };
  const invalidNames = new Set<string>();
  const maps = {} as Record<Section, number[]>;
  for (const section of Object.keys(SECTION_SCHEMAS) as Section[]) {
    maps[section] = [];
    const items = raw[section];
    if (items === undefined) continue;
    if (!Array.isArray(items)) return undefined;
    items.forEach((item, i) => {
      const r = SECTION_SCHEMAS[section].safeParse(item);
      if (r.success) {
        (defs[section] as unknown[]).push(r.data);
        maps[section].push(i);
      } else if (item && typeof item === "object" && typeof (item as { name?: unknown }).name === "string") {
        invalidNames.add((item as { name: string }).name);
      }
    });
  }
  const ix = Object.fromEntries(
    (Object.keys(maps) as Section[]).map((k) => [k, (i: number) => maps[k][i] ?? i]),
  ) as IndexMap;
  return { defs, ix, invalidNames };
}

/**
 * Validates a definitions object: its shape (zod), then every cross-reference, then (with an introspector)
 * the source tables' columns. Returns every problem at once; definitions only when there are none.
 */
export async function validateDefinitions(
  input: unknown,
  introspect?: SourceIntrospector,
): Promise<{ ok: true; definitions: Definitions } | { ok: false; problems: Problem[] }> {
  const parsed = Definitions.safeParse(input);
  const problems: Problem[] = [];
  let defs: Definitions;
  let ix: IndexMap = IDENTITY_INDEX;
  let invalidNames = new Set<string>();
  if (parsed.success) defs = parsed.data;
  else {
    // Report the shape problems, and still cross-check the objects that are well formed, so one pass lists all.
    problems.push(...zodProblems(parsed.error));
    const partial = parseWellFormed(input);
    if (!partial) return { ok: false, problems };
    ({ defs, ix, invalidNames } = partial);
  }
  const known = (name: string) => invalidNames.has(name);

  duplicates(defs.entities, "entities", problems, ix.entities);
  duplicates(defs.data_sources, "data_sources", problems, ix.data_sources);
  duplicates(defs.feature_views, "feature_views", problems, ix.feature_views);
  duplicates(defs.feature_services, "feature_services", problems, ix.feature_services);

  const entities = new Map(defs.entities.map((e) => [e.name, e]));
  const joinKeyOwner = new Map<string, string>();
  defs.entities.forEach((e, i) => {
    const owner = joinKeyOwner.get(e.join_key);
    if (owner !== undefined && owner !== e.name)
      problems.push({
        path: `entities[${ix.entities(i)}].join_key`,
        message: `join key ${e.join_key} is already used by entity ${owner}`,
      });
    else joinKeyOwner.set(e.join_key, e.name);
  });

  const sources = new Map(defs.data_sources.map((s) => [s.name, s]));
  defs.data_sources.forEach((s, i) => {
    if (s.kind !== "push") return;
    const batch = sources.get(s.batch_source);
    if (!batch) {
      if (!known(s.batch_source))
        problems.push({
          path: `data_sources[${ix.data_sources(i)}].batch_source`,
          message: `unknown data source ${s.batch_source}`,
        });
    } else if (batch.kind !== "postgres")
      problems.push({
        path: `data_sources[${ix.data_sources(i)}].batch_source`,
        message: `batch source ${s.batch_source} must be a postgres source`,
      });
  });

  const batchOf = (sourceName: string): PostgresSourceSpec | undefined => {
    const s = sources.get(sourceName);
    if (!s) return undefined;
    if (s.kind === "postgres") return s;
    const b = sources.get(s.batch_source);
    return b?.kind === "postgres" ? b : undefined;
  };

  // columns each postgres source must have, with the dtype or key type they must fit
  const needs = new Map<string, { column: string; check: (pgType: string) => boolean; what: string; path: string }[]>();
  const need = (src: PostgresSourceSpec, column: string, check: (t: string) => boolean, what: string, path: string) => {
    const list = needs.get(src.name) ?? [];
    list.push({ column, check, what, path });
    needs.set(src.name, list);
  };

  const views = new Map(defs.feature_views.map((v) => [v.name, v]));
  defs.feature_views.forEach((v, i) => {
    const at = `feature_views[${ix.feature_views(i)}]`;
    const joinKeys = new Set<string>();
    v.entities.forEach((name, j) => {
      const e = entities.get(name);
      if (!e) {
        if (!known(name)) problems.push({ path: `${at}.entities[${j}]`, message: `unknown entity ${name}` });
      } else if (joinKeys.has(e.join_key))
        problems.push({ path: `${at}.entities[${j}]`, message: `entity ${name} is listed twice` });
      else joinKeys.add(e.join_key);
    });
    if (v.materialization?.schedule !== undefined && !v.online)
      problems.push({
        path: `${at}.materialization.schedule`,
        message: `feature view ${v.name} is not online: a schedule materialises into the online store`,
      });
    const src = sources.get(v.source);
    if (!src && !known(v.source)) problems.push({ path: `${at}.source`, message: `unknown data source ${v.source}` });
    const batch = batchOf(v.source);
    const seen = new Set<string>();
    v.schema.forEach((f, j) => {
      if (seen.has(f.name)) problems.push({ path: `${at}.schema[${j}].name`, message: `duplicate feature ${f.name}` });
      seen.add(f.name);
      if (joinKeys.has(f.name))
        problems.push({ path: `${at}.schema[${j}].name`, message: `feature ${f.name} has the name of a join key` });
      if (batch && (f.name === batch.timestamp_field || f.name === batch.created_timestamp_field))
        problems.push({
          path: `${at}.schema[${j}].name`,
          message: `feature ${f.name} has the name of a timestamp field`,
        });
      if (batch)
        need(batch, f.name, (t) => dtypeCompatible(f.dtype, t), `feature of dtype ${f.dtype}`, `${at}.schema[${j}]`);
    });
    if (batch) {
      v.entities.forEach((name, j) => {
        const e = entities.get(name);
        if (e)
          need(
            batch,
            e.join_key,
            (t) => keyCompatible(e.value_type, t),
            `join key of type ${e.value_type}`,
            `${at}.entities[${j}]`,
          );
      });
    }
  });

  defs.feature_services.forEach((s, i) => {
    s.features.forEach((ref, j) => {
      const at = `feature_services[${ix.feature_services(i)}].features[${j}]`;
      const v = views.get(ref.feature_view);
      if (!v) {
        if (!known(ref.feature_view))
          problems.push({ path: `${at}.feature_view`, message: `unknown feature view ${ref.feature_view}` });
        return;
      }
      const names = new Set(v.schema.map((f) => f.name));
      ref.features?.forEach((f, k) => {
        if (!names.has(f))
          problems.push({ path: `${at}.features[${k}]`, message: `feature view ${v.name} has no feature ${f}` });
      });
    });
  });

  if (introspect) {
    await Promise.all(
      defs.data_sources.map(async (s, i) => {
        if (s.kind !== "postgres") return;
        const at = `data_sources[${ix.data_sources(i)}]`;
        const result = await introspect(s);
        if ("error" in result) {
          problems.push({ path: `${at}.${s.table ? "table" : "query"}`, message: result.error });
          return;
        }
        const cols = result.columns;
        const tsType = cols.get(s.timestamp_field);
        if (tsType === undefined)
          problems.push({
            path: `${at}.timestamp_field`,
            message: `column ${s.timestamp_field} not found in the source`,
          });
        else if (!TIME_TYPES.has(tsType))
          problems.push({
            path: `${at}.timestamp_field`,
            message: `column ${s.timestamp_field} is ${tsType}, not a timestamp`,
          });
        if (s.created_timestamp_field) {
          const t = cols.get(s.created_timestamp_field);
          if (t === undefined)
            problems.push({
              path: `${at}.created_timestamp_field`,
              message: `column ${s.created_timestamp_field} not found in the source`,
            });
          else if (!TIME_TYPES.has(t))
            problems.push({
              path: `${at}.created_timestamp_field`,
              message: `column ${s.created_timestamp_field} is ${t}, not a timestamp`,
            });
        }
        for (const n of needs.get(s.name) ?? []) {
          const t = cols.get(n.column);
          if (t === undefined) problems.push({ path: n.path, message: `source ${s.name} has no column ${n.column}` });
          else if (!n.check(t))
            problems.push({
              path: n.path,
              message: `column ${n.column} of source ${s.name} is ${t}, which does not fit a ${n.what}`,
            });
        }
      }),
    );
  }

  problems.sort((a, b) => a.path.localeCompare(b.path, "en", { numeric: true }));
  return problems.length ? { ok: false, problems } : { ok: true, definitions: defs };
}
