import { OpenAPIHono } from "@hono/zod-openapi";
import { freshnessSamples } from "../quality/freshness.ts";
import { accessResolver, routeAccess } from "./access.ts";
import type { App, AppDeps } from "./app-types.ts";
import type { AppEnv } from "./env.ts";
import { ApiError, onError, zodErrorToApi } from "./errors.ts";
import { frontDoor } from "./front-door.ts";
import { createMetrics, instrumentOnlineStore, registerMetricsRoute } from "./metrics.ts";
import { registerConsoleRoutes } from "./routes/console.ts";
import { registerOfflineRoutes } from "./routes/offline.ts";
import { registerOnlineRoutes } from "./routes/online.ts";
import { registerQualityRoutes } from "./routes/quality.ts";
import { registerRegistryRoutes } from "./routes/registry.ts";
import { registerSystemRoutes } from "./routes/system.ts";

export type { App, AppDeps, AppLimits } from "./app-types.ts";

export function createApp(deps: AppDeps): App {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodErrorToApi(result.error, result.target === "json" ? "body" : result.target);
    },
  });

  // What each route needs, from the scopes the routes declare; known once they are all registered (below).
  let access: ReturnType<typeof accessResolver> = () => {
    throw new Error("a request before the routes were registered");
  };
  const metrics = deps.metrics ?? createMetrics({ snapshotAgeSeconds: () => deps.snapshots.ageSeconds() });
  const { db, online, registry, snapshots } = deps;
  metrics.watchFreshness(async () => {
    const projects = await registry.listProjects();
    const snaps = await Promise.all(projects.map((p) => snapshots.get(p.name)));
    return freshnessSamples(
      { db, online },
      snaps.map((s) => ({ project: s.project, views: [...s.views.keys()] })),
    );
  });
  // Routes see the store through the metrics (errors, entities and features served). A copy: the caller's deps stay as given.
  deps = { ...deps, metrics, online: instrumentOnlineStore(deps.online, metrics) };
  app.use(
    frontDoor({
      logger: deps.logger,
      metrics,
      lifecycle: deps.lifecycle,
      auth: deps.auth,
      access: (method, path) => access(method, path),
      maxBodyBytes: deps.limits.maxBodyBytes,
    }),
  );
  app.onError(onError);
  app.notFound((c) => c.json(new ApiError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`).body(), 404));

  registerSystemRoutes(app, deps);
  registerMetricsRoute(app, metrics);
  registerRegistryRoutes(app, deps);
  registerOfflineRoutes(app, deps);
  registerOnlineRoutes(app, deps);
  registerQualityRoutes(app, deps);
  registerConsoleRoutes(app, deps);
  access = accessResolver(routeAccess(app), deps.defaultProject);
  return app;
}
