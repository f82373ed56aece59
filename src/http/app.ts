import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import type { Db } from "../db/client.ts";
import type { Logger } from "../logger.ts";
import type { OnlineStore } from "../online/store.ts";
import type { RegistryService } from "../registry/service.ts";
import type { SnapshotCache } from "../registry/snapshot-cache.ts";
import type { AppEnv } from "./env.ts";
import { ApiError, onError, zodErrorToApi } from "./errors.ts";
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
}

export type App = OpenAPIHono<AppEnv>;

export function createApp(deps: AppDeps): App {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodErrorToApi(result.error, result.target === "json" ? "body" : result.target);
    },
  });

  app.use(requestId({ headerName: "x-request-id" }));
  app.use(async (c, next) => {
    const started = performance.now();
    const log = deps.logger.child({ request_id: c.get("requestId") });
    c.set("logger", log);
    await next();
    const status = c.res.status;
    const fields = {
      method: c.req.method,
      path: c.req.path,
      status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
    };
    if (status >= 500) log.error(fields, "request");
    else log.debug(fields, "request");
  });
  app.use(
    bodyLimit({
      maxSize: deps.limits.maxBodyBytes,
      onError: () => {
        throw new ApiError(413, "payload_too_large", `request body is larger than ${deps.limits.maxBodyBytes} bytes`);
      },
    }),
  );

  app.onError(onError);
  app.notFound((c) => c.json(new ApiError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`).body(), 404));

  registerSystemRoutes(app, deps);
  registerRegistryRoutes(app, deps);
  return app;
}
