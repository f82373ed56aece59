import { notFound } from "../../errors.ts";
import { viewFreshness } from "../../quality/freshness.ts";
import { viewStats } from "../../quality/stats.ts";
import { verify } from "../../quality/verify.ts";
import type { RegistrySnapshot } from "../../registry/snapshot.ts";
import { scopedRoute } from "../access.ts";
import type { App, AppDeps } from "../app-types.ts";
import { Freshness, StatsQuery, Verification, VerifyBody, ViewStats } from "../quality-schemas.ts";
import { errorResponses, json, ObjectParams, ProjectParam } from "../schemas.ts";

function viewOf(snap: RegistrySnapshot, name: string) {
  const view = snap.views.get(name);
  if (!view) throw notFound(`feature view ${name} not found in project ${snap.project}`);
  return view;
}

/** Freshness, consistency and data quality (src/quality): reads only, so a read key will do. */
export function registerQualityRoutes(app: App, deps: AppDeps) {
  app.openapi(
    scopedRoute("read", {
      method: "get",
      path: "/v1/projects/{project}/feature-views/{name}/freshness",
      tags: ["quality"],
      summary: "When the view's online values were last brought up to date, and how far behind now that is",
      request: { params: ObjectParams },
      responses: { 200: json(Freshness, "The view's freshness"), ...errorResponses },
    }),
    async (c) => {
      const { project, name } = c.req.valid("param");
      const view = viewOf(await deps.snapshots.getExisting(project), name);
      return c.json(await viewFreshness(deps, view), 200);
    },
  );

  app.openapi(
    // a read: it compares the stores and writes nothing
    scopedRoute("read", {
      method: "post",
      path: "/v1/projects/{project}/verify",
      tags: ["quality"],
      summary: "Compare the online store with the offline store as of now, on a sample of each view's entities",
      description:
        "For each view, a sample of the entities with a row in the batch source as of now (all of them when fewer than " +
        "`sample`): the online answer against historical retrieval with now as the timestamp (the same point-in-time " +
        "rule, ttl included). Values are compared by dtype (float32 as float32). Reads only: a read key will do.",
      request: {
        params: ProjectParam,
        body: { content: { "application/json": { schema: VerifyBody } }, required: true },
      },
      responses: {
        200: json(Verification, "Per view: entities sampled, matching, mismatching, missing online"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { project } = c.req.valid("param");
      const body = c.req.valid("json");
      const snap = await deps.snapshots.getExisting(project);
      const result = await verify(deps, snap, {
        feature_views: body.feature_views ?? undefined,
        sample: body.sample ?? undefined,
      });
      return c.json(result, 200);
    },
  );

  app.openapi(
    scopedRoute("read", {
      method: "get",
      path: "/v1/projects/{project}/feature-views/{name}/stats",
      tags: ["quality"],
      summary: "Statistics of the view's features over its batch source, computed inside Postgres",
      description:
        "Per feature: count (rows considered), null_count, min, max, mean, stddev (sample), distinct, a histogram for " +
        "numbers and the top values for strings and booleans; over the rows with event time in [start_ts, end_ts) when given.",
      request: { params: ObjectParams, query: StatsQuery },
      responses: { 200: json(ViewStats, "The view's statistics"), ...errorResponses },
    }),
    async (c) => {
      const { project, name } = c.req.valid("param");
      const view = viewOf(await deps.snapshots.getExisting(project), name);
      return c.json(await viewStats(deps.db, view, c.req.valid("query")), 200);
    },
  );
}
