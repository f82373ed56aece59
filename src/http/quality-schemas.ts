import { z } from "@hono/zod-openapi";
import { FeatureStats as StatsOfFeature } from "../quality/stats.ts";

/** Bodies of the data-quality endpoints (freshness, verify, stats). */

const Timestamp = z.string().nullable().openapi({ description: "RFC 3339, UTC; null when there is none" });

export const Freshness = z
  .object({
    last_materialized_end: Timestamp.openapi({ description: "End of the last successful materialisation window" }),
    last_push_event_timestamp: Timestamp.openapi({
      description: "Newest event time pushed or written to the online store",
    }),
    newest_offline_event_timestamp: Timestamp.openapi({ description: "Newest event time in the batch source" }),
    lag_seconds: z.number().nullable().openapi({
      description: "Now − the later of last_materialized_end and last_push_event_timestamp; null when neither exists",
    }),
  })
  .openapi("Freshness");
export type Freshness = z.infer<typeof Freshness>;

export const VerifyBody = z
  .object({
    feature_views: z
      .array(z.string())
      .nullish()
      .openapi({ description: "views to verify; omitted: every online view", example: ["driver_hourly_stats"] }),
    sample: z
      .number({ error: "sample must be a number of entities" })
      .int("sample must be a whole number")
      .min(1)
      .max(100_000)
      .nullish()
      .openapi({ description: "entities per view (default 1000); all of them when the view has fewer", example: 1000 }),
  })
  .strict()
  .openapi("VerifyRequest");
export type VerifyBody = z.infer<typeof VerifyBody>;

export const VerifyExample = z
  .object({
    entity: z.record(z.string(), z.unknown()).openapi({ example: { driver_id: 1001 } }),
    issue: z.enum(["mismatch", "missing_online"]),
    online_status: z.enum(["PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"]),
    differences: z.array(z.object({ feature: z.string(), online: z.unknown(), offline: z.unknown() })),
  })
  .openapi("VerifyExample");

export const ViewVerification = z
  .object({
    feature_view: z.string(),
    sampled: z.number().int().openapi({ description: "entities compared" }),
    matching: z.number().int(),
    mismatching: z.number().int().openapi({ description: "entities with at least one value that differs" }),
    missing_online: z.number().int().openapi({ description: "entities the online store does not have at all" }),
    examples: z.array(VerifyExample).openapi({ description: "up to 5 of the entities that did not match" }),
  })
  .openapi("ViewVerification");

export const Verification = z
  .object({
    as_of: z.string().openapi({ description: "the time both stores were read as of (RFC 3339, UTC)" }),
    results: z.array(ViewVerification),
  })
  .openapi("Verification");
export type Verification = z.infer<typeof Verification>;

export const StatsQuery = z.object({
  start_ts: z
    .string()
    .optional()
    .openapi({ description: "window start (event time, included; RFC 3339)", example: "2024-01-01T00:00:00Z" }),
  end_ts: z
    .string()
    .optional()
    .openapi({ description: "window end (event time, excluded; RFC 3339)", example: "2024-01-02T00:00:00Z" }),
});

// One feature's figures are defined once, in src/quality/stats.ts (the job record carries them too); named here.
export const FeatureStats = z.object(StatsOfFeature.shape).openapi("FeatureStats");

export const ViewStats = z
  .object({
    feature_view: z.string(),
    start_ts: z.string().nullable(),
    end_ts: z.string().nullable(),
    rows: z.number().int(),
    features: z.array(FeatureStats),
  })
  .openapi("FeatureViewStats");
export type ViewStats = z.infer<typeof ViewStats>;
