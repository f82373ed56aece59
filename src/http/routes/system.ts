import { z } from "@hono/zod-openapi";
import { declareScope, describeScopes, routeAccess, scopedRoute } from "../access.ts";
import type { App, AppDeps } from "../app-types.ts";
import { renderDocsPage } from "../docs-page.ts";
import { json } from "../schemas.ts";

const Health = z
  .object({
    status: z.enum(["ok", "unavailable"]),
    problems: z.array(z.string()).optional(),
    registry: z.object({ project: z.string(), version: z.number().nullable(), age_seconds: z.number().nullable() }),
    /** What the online store runs on (absent in embedded mode, which has no Redis). */
    online_store: z
      .object({
        mode: z.enum(["single", "cluster", "sentinel"]),
        nodes: z
          .array(z.string())
          .openapi({ description: "host:port of the masters it writes to; with Sentinel, then the sentinels" }),
      })
      .optional(),
  })
  .openapi("Health");

const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: {
    title: "Larder",
    version: "0.1.0",
    description:
      "A Feast-compatible feature store server. The root endpoints act on the server's default project; `/v1/projects/{project}/…` on any.",
  },
  security: [{ apiKey: [] }],
};

export function registerSystemRoutes(app: App, deps: AppDeps) {
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
    type: "http",
    scheme: "bearer",
    description: "An API key made with `larder keys create` (`lk_<id>_<secret>`)",
  });
  app.openapi(
    scopedRoute("public", {
      method: "get",
      path: "/health",
      tags: ["system"],
      summary: "Ready when the registry is loaded and the online store answers (no key needed)",
      responses: { 200: json(Health, "Healthy"), 503: json(Health, "Something is wrong") },
    }),
    async (c) => {
      const problems: string[] = [];
      const project = deps.defaultProject;
      let snap = deps.snapshots.peek(project);
      if (!snap) {
        try {
          snap = await deps.snapshots.get(project);
        } catch (e) {
          problems.push(`registry not loaded: ${(e as Error).message}`);
        }
      }
      try {
        await withTimeout(deps.online.ping(), 1000, "online store did not answer within 1s");
      } catch (e) {
        problems.push(`online store: ${(e as Error).message}`);
      }
      const age = deps.snapshots.ageSeconds();
      const registry = { project, version: snap?.version ?? null, age_seconds: Number.isFinite(age) ? age : null };
      const online_store = deps.online.describe?.();
      if (problems.length) return c.json({ status: "unavailable" as const, problems, registry, online_store }, 503);
      return c.json({ status: "ok" as const, registry, online_store }, 200);
    },
  );

  app.openapi(
    scopedRoute("public", {
      method: "get",
      path: "/health/live",
      tags: ["system"],
      summary: "Liveness: 200 while the process runs, whatever the stores do (no key needed)",
      responses: { 200: json(z.object({ status: z.literal("ok") }).openapi("Live"), "Alive") },
    }),
    (c) => c.json({ status: "ok" as const }, 200),
  );

  // The auth paragraph is written from the routes' declared scopes, once they are all registered (at the first request).
  let info: typeof OPENAPI_INFO | undefined;
  app.doc31("/openapi.json", () => {
    info ??= {
      ...OPENAPI_INFO,
      info: {
        ...OPENAPI_INFO.info,
        description: `${OPENAPI_INFO.info.description}\n\n${describeScopes(routeAccess(app))}`,
      },
    };
    return info;
  });
  declareScope(app, "get", "/openapi.json", "public");
  app.get("/docs", (c) => c.html(renderDocsPage()));
  declareScope(app, "get", "/docs", "public");
}

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
