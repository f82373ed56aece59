import { createRoute } from "@hono/zod-openapi";
import { notFound } from "../../errors.ts";
import { viewFreshness } from "../../quality/freshness.ts";
import type { RegistrySnapshot } from "../../registry/snapshot.ts";
import type { App, AppDeps } from "../app.ts";
import { Freshness } from "../quality-schemas.ts";
import { errorResponses, json, ObjectParams } from "../schemas.ts";

function viewOf(snap: RegistrySnapshot, name: string) {
  const view = snap.views.get(name);
  if (!view) throw notFound(`feature view ${name} not found in project ${snap.project}`);
  return view;
}

/** Freshness, consistency and data quality (src/quality): reads only, so a read key will do. */
export function registerQualityRoutes(app: App, deps: AppDeps) {
  app.openapi(
    createRoute({
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
}
