import { z } from "@hono/zod-openapi";

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
