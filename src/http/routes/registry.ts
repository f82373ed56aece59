import { z } from "@hono/zod-openapi";
import type { ObjectKind } from "../../registry/definitions.ts";
import { scopedRoute } from "../access.ts";
import type { App, AppDeps } from "../app-types.ts";
import {
  DefinitionsBody,
  errorResponses,
  json,
  ObjectParams,
  ObjectVersion,
  Plan,
  ProjectInfo,
  ProjectParam,
  StoredObject,
} from "../schemas.ts";

const COLLECTIONS: { path: string; kind: ObjectKind; key: string; label: string }[] = [
  { path: "entities", kind: "entity", key: "entities", label: "entities" },
  { path: "data-sources", kind: "data_source", key: "data_sources", label: "data sources" },
  { path: "feature-views", kind: "feature_view", key: "feature_views", label: "feature views" },
  { path: "feature-services", kind: "feature_service", key: "feature_services", label: "feature services" },
];

export function registerRegistryRoutes(app: App, deps: AppDeps) {
  const { registry, snapshots } = deps;

  app.openapi(
    scopedRoute("read", {
      method: "get",
      path: "/v1/projects",
      tags: ["registry"],
      summary: "List projects",
      responses: { 200: json(z.object({ projects: z.array(ProjectInfo) }), "Projects"), ...errorResponses },
    }),
    async (c) => c.json({ projects: await registry.listProjects() }, 200),
  );

  for (const action of ["plan", "apply"] as const) {
    app.openapi(
      scopedRoute("admin", {
        method: "post",
        path: `/v1/projects/{project}/${action}`,
        tags: ["registry"],
        summary:
          action === "plan"
            ? "Diff a definitions object against the registry, writing nothing"
            : "Make the project hold exactly the definitions given (declarative), in one transaction",
        request: {
          params: ProjectParam,
          body: { content: { "application/json": { schema: DefinitionsBody } }, required: true },
        },
        responses: { 200: json(Plan, "The diff"), ...errorResponses },
      }),
      async (c) => {
        const { project } = c.req.valid("param");
        const body = c.req.valid("json");
        if (action === "plan") return c.json(await registry.plan(project, body), 200);
        const plan = await registry.apply(project, body);
        // This server sees its own change at once; others within a poll.
        await snapshots.reload(project);
        return c.json(plan, 200);
      },
    );
  }

  for (const col of COLLECTIONS) {
    app.openapi(
      scopedRoute("read", {
        method: "get",
        path: `/v1/projects/{project}/${col.path}`,
        tags: ["registry"],
        summary: `List ${col.label}`,
        request: { params: ProjectParam },
        responses: { 200: json(z.object({ [col.key]: z.array(StoredObject) }), `The ${col.label}`), ...errorResponses },
      }),
      async (c) => {
        const { project } = c.req.valid("param");
        return c.json({ [col.key]: await registry.list(project, col.kind) }, 200);
      },
    );
    app.openapi(
      scopedRoute("read", {
        method: "get",
        path: `/v1/projects/{project}/${col.path}/{name}`,
        tags: ["registry"],
        summary: `Get one of the ${col.label}`,
        request: { params: ObjectParams },
        responses: { 200: json(StoredObject, "The object"), ...errorResponses },
      }),
      async (c) => {
        const { project, name } = c.req.valid("param");
        return c.json(await registry.get(project, col.kind, name), 200);
      },
    );
    app.openapi(
      scopedRoute("read", {
        method: "get",
        path: `/v1/projects/{project}/${col.path}/{name}/versions`,
        tags: ["registry"],
        summary: `Every version of one of the ${col.label}, oldest first`,
        request: { params: ObjectParams },
        responses: { 200: json(z.object({ versions: z.array(ObjectVersion) }), "Its versions"), ...errorResponses },
      }),
      async (c) => {
        const { project, name } = c.req.valid("param");
        return c.json({ versions: await registry.versions(project, col.kind, name) }, 200);
      },
    );
  }
}
