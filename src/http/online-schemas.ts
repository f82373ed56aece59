import { z } from "@hono/zod-openapi";

/**
 * Bodies of the online endpoints, in Feast's shapes. Unknown top-level fields are ignored (as Feast's server does),
 * so clients that send Feast's other fields (allow_registry_cache, …) work unchanged.
 */
const EntityColumns = z
  .record(z.string(), z.array(z.unknown(), { error: "each entity column must be an array of values" }), {
    error: "entities must be an object of join key → array of values",
  })
  .openapi({ example: { driver_id: [1001, 1002] } });

export const OnlineFeaturesBody = z
  .object({
    features: z
      .array(z.string({ error: 'a feature reference is a string "view:feature"' }))
      .nullish()
      .openapi({ example: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"] }),
    feature_service: z.string().min(1).nullish().openapi({ description: "Stands instead of `features`" }),
    entities: EntityColumns,
    full_feature_names: z.boolean().nullish().openapi({ description: "Name features `view__feature`" }),
    allow_registry_cache: z
      .boolean()
      .nullish()
      .openapi({ description: "Accepted for Feast compatibility; the registry is always cached" }),
  })
  .passthrough()
  .openapi("OnlineFeaturesRequest");

export const FeatureStatus = z.enum(["PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"]);

export const OnlineFeaturesResponse = z
  .object({
    metadata: z.object({ feature_names: z.array(z.string()) }),
    results: z.array(
      z.object({
        values: z.array(z.unknown()),
        statuses: z.array(FeatureStatus),
        event_timestamps: z.array(z.string()),
      }),
    ),
  })
  .openapi("OnlineFeaturesResponse", {
    example: {
      metadata: { feature_names: ["driver_id", "conv_rate"] },
      results: [
        {
          values: [1001, 1002],
          statuses: ["PRESENT", "PRESENT"],
          event_timestamps: ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"],
        },
        {
          values: [0.7037, null],
          statuses: ["PRESENT", "NOT_FOUND"],
          event_timestamps: ["2021-12-31T23:00:00Z", "1970-01-01T00:00:00Z"],
        },
      ],
    },
  });

const Frame = z
  .record(z.string(), z.array(z.unknown(), { error: "each df column must be an array of values" }), {
    error: "df must be an object of column → array of values",
  })
  .openapi({
    example: { driver_id: [1001], event_timestamp: ["2026-01-01T00:00:00Z"], conv_rate: [0.5], acc_rate: [0.9] },
  });

export const PushBody = z
  .object({
    push_source_name: z.string().min(1),
    df: Frame,
    to: z
      .enum(["online", "offline", "online_and_offline"], { error: "to must be online, offline or online_and_offline" })
      .default("online"),
    allow_registry_cache: z.boolean().nullish(),
    transform_on_write: z.boolean().nullish(),
  })
  .passthrough()
  .openapi("PushRequest");

export const WriteToOnlineStoreBody = z
  .object({
    feature_view_name: z.string().min(1),
    df: Frame,
    allow_registry_cache: z.boolean().nullish(),
    transform_on_write: z.boolean().nullish(),
  })
  .passthrough()
  .openapi("WriteToOnlineStoreRequest");

export const RowsWritten = z
  .object({
    rows: z.number().int().openapi({ description: "Rows in the frame (what Feast answers)" }),
    written: z.number().int().optional().openapi({
      description:
        "Rows stored in the online store: one per frame row and online feature view it feeds. Absent with to: offline.",
    }),
    skipped_older: z
      .number()
      .int()
      .optional()
      .openapi({
        description:
          "Of those rows, the ones not stored because the online store already held a newer value for that entity and " +
          "view (event time, then created time): never older over newer. Absent with to: offline.",
      }),
  })
  .openapi("RowsWritten");
