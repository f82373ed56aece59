import { bigint, integer, jsonb, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { larder } from "../db/larder-schema.ts";

export const projects = larder.table("projects", {
  name: text("name").primaryKey(),
  /** Bumped by every apply that changes something: the snapshot cache polls it. */
  registryVersion: bigint("registry_version", { mode: "number" }).notNull().default(0),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * The current objects of every kind, one row each. `spec` is the normalised definition (zod output);
 * the kind-specific columns are copies kept for listing and integrity.
 */
export const registryObjects = larder.table(
  "registry_objects",
  {
    project: text("project")
      .notNull()
      .references(() => projects.name, { onDelete: "cascade" }),
    kind: text("kind").notNull(),
    name: text("name").notNull(),
    version: integer("version").notNull(),
    spec: jsonb("spec").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.project, t.kind, t.name] })],
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
