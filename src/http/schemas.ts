import { z } from "@hono/zod-openapi";
import { PROJECT_NAME_RULE } from "../registry/definitions.ts";
import { ErrorBody } from "./errors.ts";

export const ProjectParam = z.object({
  project: z
    .string()
    .regex(...PROJECT_NAME_RULE)
    .openapi({ param: { name: "project", in: "path" }, example: "default" }),
});

export const ObjectParams = ProjectParam.extend({
  name: z
    .string()
    .min(1)
    .openapi({ param: { name: "name", in: "path" }, example: "driver_hourly_stats" }),
});

/** A definitions object (see the contract); validated in full by the registry, which reports every problem by path. */
export const DefinitionsBody = z
  .object({
    project: z.string().optional(),
    entities: z.array(z.record(z.string(), z.unknown())).optional(),
    data_sources: z.array(z.record(z.string(), z.unknown())).optional(),
    feature_views: z.array(z.record(z.string(), z.unknown())).optional(),
    feature_services: z.array(z.record(z.string(), z.unknown())).optional(),
  })
  .passthrough()
  .openapi("Definitions");

export const FieldChange = z.object({ field: z.string(), from: z.unknown().optional(), to: z.unknown().optional() });
export const ObjectChange = z
  .object({
    kind: z.enum(["entity", "data_source", "feature_view", "feature_service"]),
    name: z.string(),
    action: z.enum(["create", "update", "delete", "unchanged"]),
    fields: z.array(FieldChange),
    breaking: z.array(z.string()),
  })
  .openapi("ObjectChange");

export const Plan = z
  .object({
    project: z.string(),
    applied: z.boolean(),
    registry_version: z.number().int(),
    summary: z.object({ create: z.number(), update: z.number(), delete: z.number(), unchanged: z.number() }),
    changes: z.array(ObjectChange),
    breaking: z.boolean(),
    warnings: z
      .array(
        z.object({
          path: z.string().openapi({ example: "feature_views.driver_hourly_stats" }),
          message: z.string(),
          suggestion: z
            .string()
            .optional()
            .openapi({ example: 'CREATE INDEX ON "public"."driver_stats" ("driver_id", "event_timestamp")' }),
        }),
      )
      .openapi({
        description:
          "Advice that did not stop the plan or apply: e.g. a postgres source with no index whose leading columns are a view's join keys (historical retrieval then scans it), with the CREATE INDEX that would serve it",
      }),
  })
  .openapi("Plan");

export const StoredObject = z
  .object({
    kind: z.string(),
    name: z.string(),
    version: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
    spec: z.record(z.string(), z.unknown()),
  })
  .openapi("RegistryObject");

export const ObjectVersion = z
  .object({
    version: z.number().int(),
    change: z.enum(["create", "update", "delete"]),
    created_at: z.string(),
    spec: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("ObjectVersion");

export const ProjectInfo = z
  .object({ name: z.string(), registry_version: z.number().int(), created_at: z.string(), updated_at: z.string() })
  .openapi("Project");

export const errorResponses = {
  400: { content: { "application/json": { schema: ErrorBody } }, description: "Bad input" },
  401: { content: { "application/json": { schema: ErrorBody } }, description: "No key, or a bad key" },
  403: { content: { "application/json": { schema: ErrorBody } }, description: "The key lacks the scope" },
  404: { content: { "application/json": { schema: ErrorBody } }, description: "Unknown object" },
  503: { content: { "application/json": { schema: ErrorBody } }, description: "A backing store is down" },
} as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});
