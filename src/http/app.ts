import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import { matchedRoutes } from "hono/route";
import type { KeyVerifier } from "../auth/keys.ts";
import type { Db } from "../db/client.ts";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import type { OnlineStore } from "../online/store.ts";
import type { RegistryService } from "../registry/service.ts";
import type { SnapshotCache } from "../registry/snapshot-cache.ts";
import { apiKeyAuth } from "./auth.ts";
import type { AppEnv } from "./env.ts";
import { ApiError, onError, zodErrorToApi } from "./errors.ts";
import { readJsonBodies } from "./json-depth.ts";
import { createMetrics, instrumentOnlineStore, type Metrics, registerMetricsRoute } from "./metrics.ts";
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

/** The route pattern a request matched (`/v1/projects/:project/push`), never the raw path; "unmatched" for 404s. */
function routeLabel(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i]!;
    if (r.method !== "ALL") return r.path;
  }
  return "unmatched";
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
  app.use(requestId({ headerName: "x-request-id" }));
  app.use(async (c, next) => {
    const started = performance.now();
    const log = deps.logger.child({ request_id: c.get("requestId") });
    c.set("logger", log);
    await next();
    // Once stopping, answers ask keep-alive clients to reconnect (to a server that is not stopping).
    if (deps.lifecycle?.stopping) c.header("Connection", "close");
    const status = c.res.status;
    const seconds = (performance.now() - started) / 1000;
    const route = routeLabel(c);
    metrics.request(c.req.method, route, status, seconds);
    // One line per request; headers are never logged (keys travel in Authorization).
    const fields = {
      method: c.req.method,
      route,
      path: c.req.path,
      status,
      duration_ms: Math.round(seconds * 100_000) / 100,
      key_id: c.get("auth")?.keyId,
    };
    if (status >= 500) log.error(fields, "request");
    else log.info(fields, "request");
  });
  if (deps.auth) app.use(apiKeyAuth(deps.auth, deps.defaultProject));
  const tooLarge = () => {
    throw new ApiError(413, "payload_too_large", `request body is larger than ${deps.limits.maxBodyBytes} bytes`);
  };
  const limitStreamedBody = bodyLimit({ maxSize: deps.limits.maxBodyBytes, onError: tooLarge });
  app.use((c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    // A declared length is checked from the header alone (Node's parser never reads past it). Hono's bodyLimit reads
    // c.req.raw.body, which makes @hono/node-server build a full web Request and stream for every request: a large
    // share of a small lookup's cost. Bodies without a length (chunked) are counted as they stream, by bodyLimit.
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined)
      return Number.parseInt(length, 10) > deps.limits.maxBodyBytes ? tooLarge() : next();
    return limitStreamedBody(c, next);
  });

  app.use(readJsonBodies());

  app.onError(onError);
  app.notFound((c) => c.json(new ApiError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`).body(), 404));

  registerSystemRoutes(app, deps);
  registerMetricsRoute(app, metrics);
  registerRegistryRoutes(app, deps);
  registerOfflineRoutes(app, deps);
  registerOnlineRoutes(app, deps);
  return app;
}
