import type {
  Definitions,
  EntitySpec,
  FeatureServiceSpec,
  FeatureViewSpec,
  MaterializationSpec,
  PostgresSourceSpec,
  PushSourceSpec,
} from "./definitions.ts";
import type { Dtype, KeyType } from "./dtypes.ts";
import { compileExpectation, type ValueCheck } from "./expectations.ts";

export interface CompiledEntity {
  name: string;
  joinKey: string;
  valueType: KeyType;
  spec: EntitySpec;
}

export interface CompiledFeature {
  name: string;
  dtype: Dtype;
  /** Position in the view's schema: the order values are stored in. */
  index: number;
  /** The check of the feature's `expect`, if it has one. */
  check?: ValueCheck | undefined;
}

export interface CompiledView {
  project: string;
  name: string;
  /** Entities in the order the view lists them: a composite key is encoded in this order. */
  entities: CompiledEntity[];
  joinKeys: string[];
  /** The source named by the view: a postgres source, or a push source. */
  source: PostgresSourceSpec | PushSourceSpec;
  /** The postgres table or query the view's rows are read from (the push source's batch source). */
  batchSource: PostgresSourceSpec;
  /** 0: never stale. */
  ttlSeconds: number;
  online: boolean;
  /** Its schedule and partitions, when it has them. */
  materialization: MaterializationSpec | undefined;
  features: CompiledFeature[];
  featureByName: Map<string, CompiledFeature>;
  /** Changes whenever the feature names, order or dtypes change: stored values carry it. */
  layoutId: string;
  spec: FeatureViewSpec;
}

export interface CompiledService {
  name: string;
  /** Resolved: every feature reference, in the service's order. */
  features: { view: CompiledView; feature: CompiledFeature }[];
  spec: FeatureServiceSpec;
}

/** One project's definitions, resolved and indexed for the hot paths. Immutable once built. */
export interface RegistrySnapshot {
  project: string;
  /** The project's registry version when it was read; 0 for a project that has never been applied. */
  version: number;
  loadedAt: number;
  entities: Map<string, CompiledEntity>;
  /** Join key name → entity. */
  entitiesByJoinKey: Map<string, CompiledEntity>;
  sources: Map<string, PostgresSourceSpec | PushSourceSpec>;
  views: Map<string, CompiledView>;
  services: Map<string, CompiledService>;
  /** Push source name → the views it feeds. */
  viewsByPushSource: Map<string, CompiledView[]>;
  definitions: Definitions;
}

/** FNV-1a, 32-bit, as 8 hex chars: short and stable across processes. */
export function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/**
 * Builds the snapshot from definitions that already passed validation (references resolve).
 * Throws if they do not, which would be a bug in validation.
 */
export function compileSnapshot(project: string, version: number, defs: Definitions): RegistrySnapshot {
  const entities = new Map<string, CompiledEntity>();
  const entitiesByJoinKey = new Map<string, CompiledEntity>();
  for (const e of defs.entities) {
    const c: CompiledEntity = { name: e.name, joinKey: e.join_key, valueType: e.value_type, spec: e };
    entities.set(e.name, c);
    entitiesByJoinKey.set(e.join_key, c);
  }
  const sources = new Map<string, PostgresSourceSpec | PushSourceSpec>();
  for (const s of defs.data_sources) sources.set(s.name, s);

  const views = new Map<string, CompiledView>();
  const viewsByPushSource = new Map<string, CompiledView[]>();
  for (const v of defs.feature_views) {
    const source = sources.get(v.source);
    if (!source) throw new Error(`feature view ${v.name}: unknown source ${v.source}`);
    const batchSource = source.kind === "push" ? sources.get(source.batch_source) : source;
    if (batchSource?.kind !== "postgres")
      throw new Error(`feature view ${v.name}: source ${v.source} has no postgres batch source`);
    const ents = v.entities.map((n) => {
      const e = entities.get(n);
      if (!e) throw new Error(`feature view ${v.name}: unknown entity ${n}`);
      return e;
    });
    const features = v.schema.map((f, index) => ({
      name: f.name,
      dtype: f.dtype,
      index,
      check: compileExpectation(f.dtype, f.expect),
    }));
    const view: CompiledView = {
      project,
      name: v.name,
      entities: ents,
      joinKeys: ents.map((e) => e.joinKey),
      source,
      batchSource,
      ttlSeconds: v.ttl,
      online: v.online,
      materialization: v.materialization,
      features,
      featureByName: new Map(features.map((f) => [f.name, f])),
      layoutId: shortHash(
        JSON.stringify([ents.map((e) => [e.joinKey, e.valueType]), features.map((f) => [f.name, f.dtype])]),
      ),
      spec: v,
    };
    views.set(v.name, view);
    if (source.kind === "push") {
      const list = viewsByPushSource.get(source.name) ?? [];
      list.push(view);
      viewsByPushSource.set(source.name, list);
    }
  }

  const services = new Map<string, CompiledService>();
  for (const s of defs.feature_services) {
    const features: CompiledService["features"] = [];
    for (const ref of s.features) {
      const view = views.get(ref.feature_view);
      if (!view) throw new Error(`feature service ${s.name}: unknown feature view ${ref.feature_view}`);
      const names = ref.features ?? view.features.map((f) => f.name);
      for (const n of names) {
        const feature = view.featureByName.get(n);
        if (!feature) throw new Error(`feature service ${s.name}: unknown feature ${ref.feature_view}:${n}`);
        features.push({ view, feature });
      }
    }
    services.set(s.name, { name: s.name, features, spec: s });
  }

  return {
    project,
    version,
    loadedAt: Date.now(),
    entities,
    entitiesByJoinKey,
    sources,
    views,
    services,
    viewsByPushSource,
    definitions: defs,
  };
}
