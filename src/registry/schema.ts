import { bigint, boolean, integer, jsonb, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { larder } from "../db/larder-schema.ts";

export const projects = larder.table("projects", {
  name: text("name").primaryKey(),
  /** Bumped by every apply that changes something: the snapshot cache polls it. */
  registryVersion: bigint("registry_version", { mode: "number" }).notNull().default(0),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Columns every registry object has: identity, its current version, who owns it and when it changed. */
const common = () => ({
  project: text("project")
    .notNull()
    .references(() => projects.name, { onDelete: "cascade" }),
  name: text("name").notNull(),
  version: integer("version").notNull(),
  description: text("description").notNull().default(""),
  tags: jsonb("tags").$type<Record<string, string>>().notNull().default({}),
  owner: text("owner").notNull().default(""),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export const entities = larder.table(
  "entities",
  {
    ...common(),
    joinKey: text("join_key").notNull(),
    valueType: text("value_type").notNull(),
  },
  (t) => [primaryKey({ columns: [t.project, t.name] })],
);

export const dataSources = larder.table(
  "data_sources",
  {
    ...common(),
    kind: text("kind").notNull(), // 'postgres' | 'push'
    tableName: text("table_name"),
    query: text("query"),
    timestampField: text("timestamp_field"),
    createdTimestampField: text("created_timestamp_field"),
    /** `lookback` in seconds, or null when the source has none. */
    lookbackSeconds: bigint("lookback_seconds", { mode: "number" }),
    batchSource: text("batch_source"),
  },
  (t) => [primaryKey({ columns: [t.project, t.name] })],
);

export interface StoredField {
  name: string;
  dtype: string;
  description: string;
  tags: Record<string, string>;
}

export const featureViews = larder.table(
  "feature_views",
  {
    ...common(),
    entities: text("entities").array().notNull(),
    source: text("source").notNull(),
    /** bigint: a ttl may be up to MAX_TTL_SECONDS (about 285 years); 32 bits of seconds end at 68. */
    ttlSeconds: bigint("ttl_seconds", { mode: "number" }).notNull(),
    online: boolean("online").notNull(),
    /** The typed schema, in order: `[{ name, dtype, description, tags }]`. */
    schema: jsonb("schema").$type<StoredField[]>().notNull(),
    /** `{ schedule?, partitions? }`, or null when the view has neither. */
    materialization: jsonb("materialization").$type<{ schedule?: string; partitions?: number }>(),
  },
  (t) => [primaryKey({ columns: [t.project, t.name] })],
);

export interface StoredServiceRef {
  feature_view: string;
  features?: string[];
}

export const featureServices = larder.table(
  "feature_services",
  {
    ...common(),
    features: jsonb("features").$type<StoredServiceRef[]>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.project, t.name] })],
);

/** Every change of every object: create, update and delete, with the full spec as it became. */
export const objectVersions = larder.table(
  "object_versions",
  {
    project: text("project").notNull(),
    kind: text("kind").notNull(),
    name: text("name").notNull(),
    version: integer("version").notNull(),
    change: text("change").notNull(),
    /** null for a delete */
    spec: jsonb("spec"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.project, t.kind, t.name, t.version] })],
);
