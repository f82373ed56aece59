import cronParser from "cron-parser";
import { z } from "zod";
import { invalid } from "../errors.ts";
import { DtypeSchema, KeyTypeSchema, parseTtl } from "./dtypes.ts";
import { Expectation, expectationProblems } from "./expectations.ts";

export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const Identifier = z.string().regex(IDENTIFIER, "must be an identifier ([A-Za-z_][A-Za-z0-9_]*)");

/**
 * The one rule for project names, whichever way a name comes in (an HTTP path, the CLI's -p, LARDER_PROJECT, a key's
 * --project): a project the CLI could make must be one the HTTP routes can reach.
 */
export const PROJECT_NAME_RULE = [IDENTIFIER, "project must be an identifier ([A-Za-z_][A-Za-z0-9_]*)"] as const;
export const ProjectName = z.string().regex(...PROJECT_NAME_RULE);

/** Throws the invalid_argument error every entry point gives for a bad project name. */
export function checkProjectName(project: string): void {
  const r = ProjectName.safeParse(project);
  if (!r.success) {
    const message = `${r.error.issues[0]!.message}, not ${JSON.stringify(project)}`;
    throw invalid(message, [{ path: "project", message }]);
  }
}

const Tags = z.record(z.string(), z.string()).default({});
const Text = z.string().default("");

/** Ttls are used in microseconds: beyond this (about 285 years) they are no longer exact, and 0 already means "never stale". */
export const MAX_TTL_SECONDS = Math.floor(Number.MAX_SAFE_INTEGER / 1_000_000);

/** A duration field (`ttl`, `lookback`): whole seconds, or a duration like `30s`, `15m`, `12h`, `7d`, `1h30m`. */
const durationSeconds = (field: string, zero: string) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const seconds = parseTtl(v);
    if (seconds === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `${field} must be a whole number of seconds or a duration like 30s, 15m, 12h, 7d`,
      });
      return z.NEVER;
    }
    if (seconds > MAX_TTL_SECONDS) {
      ctx.addIssue({
        code: "custom",
        message: `${field} must be at most ${MAX_TTL_SECONDS} seconds (about 285 years); ${zero}`,
      });
      return z.NEVER;
    }
    return seconds;
  });

export const Ttl = durationSeconds("ttl", "0 means never stale");
/** How far before its start each incremental materialisation re-reads a source without created timestamps. */
export const Lookback = durationSeconds("lookback", "0 means none");

/** Feast writes `join_keys: [driver_id]`: one join key per entity, so a one-element list is the same thing. */
function joinKeysAlias(v: unknown): unknown {
  if (!v || typeof v !== "object" || Array.isArray(v) || !("join_keys" in v)) return v;
  const { join_keys, ...rest } = v as Record<string, unknown>;
  if (Array.isArray(join_keys) && join_keys.length === 1 && !("join_key" in rest))
    return { ...rest, join_key: join_keys[0] };
  return v;
}

const EntityObject = z
  .object({
    name: Identifier,
    join_key: Identifier.optional(),
    value_type: KeyTypeSchema.default("string"),
    description: Text,
    tags: Tags,
    owner: Text,
  })
  .strict()
  .transform((e) => ({ ...e, join_key: e.join_key ?? e.name }));

export const EntitySpec = z.preprocess(joinKeysAlias, EntityObject);
export type EntitySpec = z.infer<typeof EntitySpec>;

/** A qualified table name: `table` or `schema.table`, each part an identifier. */
export const TableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, "must be table or schema.table");

export const PostgresSourceSpec = z
  .object({
    name: Identifier,
    kind: z.literal("postgres"),
    table: TableName.optional(),
    query: z.string().min(1).optional(),
    timestamp_field: Identifier.default("event_timestamp"),
    created_timestamp_field: Identifier.optional(),
    lookback: Lookback.optional(),
    description: Text,
    tags: Tags,
    owner: Text,
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.table === undefined) === (s.query === undefined))
      ctx.addIssue({
        code: "custom",
        message: "a postgres source needs exactly one of table or query",
        path: ["table"],
      });
  });
export type PostgresSourceSpec = z.infer<typeof PostgresSourceSpec>;

export const PushSourceSpec = z
  .object({
    name: Identifier,
    kind: z.literal("push"),
    batch_source: Identifier,
    description: Text,
    tags: Tags,
    owner: Text,
  })
  .strict();
export type PushSourceSpec = z.infer<typeof PushSourceSpec>;

export const DataSourceSpec = z.discriminatedUnion("kind", [PostgresSourceSpec, PushSourceSpec], {
  error: () => "kind must be postgres or push",
});
export type DataSourceSpec = z.infer<typeof DataSourceSpec>;

export const FieldSpec = z
  .object({ name: Identifier, dtype: DtypeSchema, description: Text, tags: Tags, expect: Expectation.optional() })
  .strict()
  .superRefine((f, ctx) => {
    if (f.expect)
      for (const p of expectationProblems(f.dtype, f.expect))
        ctx.addIssue({
          code: "custom",
          message: p.message,
          path: [
            "expect",
            ...p.path
              .split(/[[\].]/)
              .filter(Boolean)
              .map((x) => (/^\d+$/.test(x) ? Number(x) : x)),
          ],
        });
  });
export type FieldSpec = z.infer<typeof FieldSpec>;

/** Most partitions one job may be split into. */
export const MAX_PARTITIONS = 256;
export const Partitions = z
  .number()
  .int("partitions must be a whole number")
  .min(1, "partitions must be at least 1")
  .max(MAX_PARTITIONS, `partitions must be at most ${MAX_PARTITIONS}`);

/** Why `expr` is not a cron expression (5 fields, or 6 with seconds first; UTC), or undefined when it is one. */
export function cronProblem(expr: string): string | undefined {
  const fields = expr.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6)
    return `schedule ${JSON.stringify(expr)} is not a cron expression: it has ${fields} field${fields === 1 ? "" : "s"} (5, or 6 with seconds first)`;
  try {
    cronParser.parseExpression(expr, { tz: "UTC" });
    return undefined;
  } catch (e) {
    return `schedule ${JSON.stringify(expr)} is not a cron expression: ${(e as Error).message}`;
  }
}

/** How a view is materialised on its own: on a cron schedule, and split into partitions run by any worker. */
export const MaterializationSpec = z
  .object({
    schedule: z
      .string()
      .superRefine((v, ctx) => {
        const problem = cronProblem(v);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional(),
    partitions: Partitions.optional(),
  })
  .strict();
export type MaterializationSpec = z.infer<typeof MaterializationSpec>;

export const FeatureViewSpec = z
  .object({
    name: Identifier,
    entities: z.array(Identifier).min(1, "a feature view needs at least one entity"),
    source: Identifier,
    ttl: Ttl.default(0),
    online: z.boolean().default(true),
    schema: z.array(FieldSpec).min(1, "a feature view needs at least one feature"),
    description: Text,
    tags: Tags,
    owner: Text,
    materialization: MaterializationSpec.optional(),
  })
  .strict();
export type FeatureViewSpec = z.infer<typeof FeatureViewSpec>;

export const FeatureServiceSpec = z
  .object({
    name: Identifier,
    features: z
      .array(z.object({ feature_view: Identifier, features: z.array(Identifier).min(1).optional() }).strict())
      .min(1, "a feature service needs at least one feature view"),
    description: Text,
    tags: Tags,
    owner: Text,
  })
  .strict();
export type FeatureServiceSpec = z.infer<typeof FeatureServiceSpec>;

export const Definitions = z
  .object({
    project: Identifier.optional(),
    entities: z.array(EntitySpec).default([]),
    data_sources: z.array(DataSourceSpec).default([]),
    feature_views: z.array(FeatureViewSpec).default([]),
    feature_services: z.array(FeatureServiceSpec).default([]),
  })
  .strict();
export type Definitions = z.infer<typeof Definitions>;
/** What a user writes (before defaults). */
export type DefinitionsInput = z.input<typeof Definitions>;

export const OBJECT_KINDS = ["entity", "data_source", "feature_view", "feature_service"] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

export type SpecOf<K extends ObjectKind> = K extends "entity"
  ? EntitySpec
  : K extends "data_source"
    ? DataSourceSpec
    : K extends "feature_view"
      ? FeatureViewSpec
      : FeatureServiceSpec;

export const SECTION_OF: Record<ObjectKind, keyof Omit<Definitions, "project">> = {
  entity: "entities",
  data_source: "data_sources",
  feature_view: "feature_views",
  feature_service: "feature_services",
};
