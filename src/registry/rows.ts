/**
 * Between a definition (the zod-normalised spec) and its row in the kind's table. `specOf(rowOf(s))` equals `s`,
 * which plan relies on to tell "unchanged" from "update".
 */
import type { DataSourceSpec, EntitySpec, FeatureServiceSpec, FeatureViewSpec, ObjectKind } from "./definitions.ts";
import { dataSources, entities, featureServices, featureViews } from "./schema.ts";

export const TABLE_OF = {
  entity: entities,
  data_source: dataSources,
  feature_view: featureViews,
  feature_service: featureServices,
} as const;

type EntityRow = typeof entities.$inferSelect;
type SourceRow = typeof dataSources.$inferSelect;
type ViewRow = typeof featureViews.$inferSelect;
type ServiceRow = typeof featureServices.$inferSelect;
export type AnyRow = EntityRow | SourceRow | ViewRow | ServiceRow;

/** The kind-specific columns of a spec (identity, version and times are set by the caller). */
export function columnsOf(kind: ObjectKind, spec: Record<string, unknown>): Record<string, unknown> {
  const meta = { description: spec.description ?? "", tags: spec.tags ?? {}, owner: spec.owner ?? "" };
  switch (kind) {
    case "entity": {
      const e = spec as EntitySpec;
      return { ...meta, joinKey: e.join_key, valueType: e.value_type };
    }
    case "data_source": {
      const s = spec as DataSourceSpec;
      if (s.kind === "push") return { ...meta, kind: "push", batchSource: s.batch_source };
      return {
        ...meta,
        kind: "postgres",
        tableName: s.table ?? null,
        query: s.query ?? null,
        timestampField: s.timestamp_field,
        createdTimestampField: s.created_timestamp_field ?? null,
        lookbackSeconds: s.lookback ?? null,
      };
    }
    case "feature_view": {
      const v = spec as FeatureViewSpec;
      return {
        ...meta,
        entities: v.entities,
        source: v.source,
        ttlSeconds: v.ttl,
        online: v.online,
        schema: v.schema,
        materialization: v.materialization ?? null,
      };
    }
    case "feature_service":
      return { ...meta, features: (spec as FeatureServiceSpec).features };
  }
}

const defined = <T extends Record<string, unknown>>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as T;

export function specOf(kind: ObjectKind, row: AnyRow): Record<string, unknown> {
  const meta = { name: row.name, description: row.description, tags: row.tags, owner: row.owner };
  switch (kind) {
    case "entity": {
      const r = row as EntityRow;
      return { ...meta, join_key: r.joinKey, value_type: r.valueType };
    }
    case "data_source": {
      const r = row as SourceRow;
      if (r.kind === "push") return { ...meta, kind: "push", batch_source: r.batchSource };
      return defined({
        ...meta,
        kind: "postgres",
        table: r.tableName,
        query: r.query,
        timestamp_field: r.timestampField,
        created_timestamp_field: r.createdTimestampField,
        lookback: r.lookbackSeconds,
      });
    }
    case "feature_view": {
      const r = row as ViewRow;
      const view = {
        ...meta,
        entities: r.entities,
        source: r.source,
        ttl: r.ttlSeconds,
        online: r.online,
        schema: r.schema,
      };
      // absent rather than null: a view without it reads back as it was written
      return r.materialization ? { ...view, materialization: r.materialization } : view;
    }
    case "feature_service":
      return { ...meta, features: (row as ServiceRow).features };
  }
}
