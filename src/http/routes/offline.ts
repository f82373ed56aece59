import { createRoute, z } from "@hono/zod-openapi";
import { historicalFeatures } from "../../offline/pit.ts";
import type { App, AppDeps } from "../app.ts";
import { errorResponses, json, ProjectParam } from "../schemas.ts";

const HistoricalBody = z
  .object({
    entity_df: z
      .record(z.string(), z.array(z.unknown()))
      .openapi({ example: { driver_id: [1001, 1002], event_timestamp: ["2021-04-12T10:59:42Z", "2021-04-12T08:12:10Z"] } }),
    features: z.array(z.string()).optional().openapi({ example: ["driver_hourly_stats:conv_rate"] }),
    feature_service: z.string().optional(),
    full_feature_names: z.boolean().optional().default(false),
  })
  .openapi("HistoricalFeaturesRequest");

const HistoricalAnswer = z
  .object({ df: z.record(z.string(), z.array(z.unknown())) })
  .openapi("HistoricalFeaturesResponse");

export function registerOfflineRoutes(app: App, deps: AppDeps) {
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/projects/{project}/historical-features",
      tags: ["offline"],
      summary: "Point-in-time-correct training data for an entity dataframe",
      description:
        "For each entity row and view: the row of that entity with the latest event time ≤ the row's event_timestamp and " +
        "≥ event_timestamp − ttl (ttl 0: no lower bound), ties broken by the latest created timestamp; null when there is none. " +
        "Answers the entity columns as sent, then the feature columns, rows in request order.",
      request: {
        params: ProjectParam,
        body: { content: { "application/json": { schema: HistoricalBody } }, required: true },
      },
      responses: { 200: json(HistoricalAnswer, "The entity dataframe with its features"), ...errorResponses },
    }),
    async (c) => {
      const { project } = c.req.valid("param");
      const body = c.req.valid("json");
      const snap = await deps.snapshots.get(project);
      return c.json(await historicalFeatures(deps.db, snap, body), 200);
    },
  );
}
