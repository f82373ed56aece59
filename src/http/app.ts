import { OpenAPIHono } from "@hono/zod-openapi";
import type { KeyVerifier } from "../auth/keys.ts";
import type { Db } from "../db/client.ts";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import type { OnlineStore } from "../online/store.ts";
import type { RegistryService } from "../registry/service.ts";
import type { SnapshotCache } from "../registry/snapshot-cache.ts";
import type { AppEnv } from "./env.ts";
import { ApiError, onError, zodErrorToApi } from "./errors.ts";
import { frontDoor } from "./front-door.ts";
import { createMetrics, instrumentOnlineStore, type Metrics, registerMetricsRoute } from "./metrics.ts";
import { registerConsoleRoutes } from "./routes/console.ts";
import { registerOfflineRoutes } from "./routes/offline.ts";
import { registerOnlineRoutes } from "./routes/online.ts";
import { registerRegistryRoutes } from "./routes/registry.ts";
import { registerSystemRoutes } from "./routes/system.ts";

export interface AppLimits {
  maxBodyBytes: number;
  maxEntityRows: number;
}

/** Everything the routes need; the server and the tests build it, so nothing is a module-level singleton. */
export interface AppDeps {
  logger: Logger;
  /** The registry and offline database (Postgres, or PGlite when embedded). */
  db: Db;
  registry: RegistryService;
  snapshots: SnapshotCache;
  online: OnlineStore;
  /** The project the Feast-compatible root endpoints act on. */
  defaultProject: string;
  limits: AppLimits;
  /** API-key verifier; absent or null: auth disabled (LARDER_AUTH=disabled, and tests unless they ask for it). */
  auth?: KeyVerifier | null;
  /** Prometheus metrics (routes call e.g. `deps.metrics?.served(…)`); createApp makes one when absent. */
  metrics?: Metrics;
  /** The stop signal for long-running work (see src/lifecycle.ts); absent in tests that never stop. */
  lifecycle?: Lifecycle;
}

export type App = OpenAPIHono<AppEnv>;

export function createApp(deps: AppDeps): App {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodErrorToApi(result.error, result.target === "json" ? "body" : result.target);
    },
  });

  const metrics = deps.metrics ?? createMetrics({ snapshotAgeSeconds: () => deps.snapshots.ageSeconds() });
  // Routes see the store through the metrics (errors, entities and features served). A copy: the caller's deps stay as given.
  deps = { ...deps, metrics, online: instrumentOnlineStore(deps.online, metrics) };
  app.use(
    frontDoor({
      logger: deps.logger,
      metrics,
      lifecycle: deps.lifecycle,
      auth: deps.auth,
      defaultProject: deps.defaultProject,
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
  registerConsoleRoutes(app, deps);
  return app;
}
