import type { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { push, writeToOnlineStore } from "../../ingest/push.ts";
import { scopedRoute } from "../access.ts";
import type { App, AppDeps } from "../app-types.ts";
import type { AppEnv } from "../env.ts";
import { zodErrorToApi } from "../errors.ts";
import {
  OnlineFeaturesBody,
  OnlineFeaturesResponse,
  PushBody,
  RowsWritten,
  WriteToOnlineStoreBody,
} from "../online-schemas.ts";
import { errorResponses, json, ProjectParam } from "../schemas.ts";

const body = <T>(schema: T) => ({ body: { content: { "application/json": { schema } }, required: true } });

/** `/v1/projects/{project}/…` as Hono's router spells it. */
const honoPath = (path: string) => path.replaceAll(/\/{(.+?)}/g, "/:$1");

/** The value, parsed by the schema, or the same 400 the routes' validators answer. */
function valid<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw zodErrorToApi(parsed.error, where);
  return parsed.data;
}

/** The project of a route: the path's, or the server's default for the Feast-compatible root endpoints. */
function projectOf(c: Context<AppEnv>, deps: AppDeps): string {
  return c.req.param("project") ?? deps.defaultProject;
}

export function registerOnlineRoutes(app: App, deps: AppDeps) {
  const { snapshots, online, limits } = deps;

  // Found once: the store routes see is a Proxy (src/http/metrics.ts), and its traps cost on every property read.
  const lookup = (online.getOnlineFeaturesBytes ?? online.getOnlineFeatures).bind(online) as (
    ...args: Parameters<typeof online.getOnlineFeatures>
  ) => Promise<Uint8Array<ArrayBuffer> | string>;
  const opts = { maxEntityRows: limits.maxEntityRows };
  for (const path of ["/get-online-features", "/v1/projects/{project}/online-features"]) {
    const native = path.startsWith("/v1");
    const route = scopedRoute("read", {
      method: "post",
      path,
      tags: ["online"],
      summary: native
        ? "Latest feature values for entity rows (column-oriented, as Feast answers)"
        : "Latest feature values for entity rows, on the default project (Feast-compatible)",
      request: { ...(native ? { params: ProjectParam } : {}), ...body(OnlineFeaturesBody) },
      responses: {
        200: json(OnlineFeaturesResponse, "One result per feature name, one value per entity row"),
        ...errorResponses,
      },
    });
    // The hot path: documented from the same route and checked with the same schemas as app.openapi would, but without
    // its chain of validator middlewares (content-type gate, param and body validators), a measurable share of a
    // 1-entity lookup. The front door has already read the body as JSON and bounded its size and depth.
    app.openAPIRegistry.registerPath(route);
    app.post(honoPath(path), async (c) => {
      const project = native ? valid(ProjectParam, c.req.param(), "param").project : deps.defaultProject;
      const req = valid(OnlineFeaturesBody, await c.req.json(), "body");
      // The registry snapshot is in memory: a lookup never queries Postgres.
      const snapshot = await snapshots.getExisting(project);
      const answer = await lookup(snapshot, req, opts);
      // Built as JSON bytes from pre-encoded fragments (src/online/lookup.ts); tests check it against OnlineFeaturesResponse.
      return c.body(answer, 200, { "content-type": "application/json" });
    });
  }

  for (const path of ["/push", "/v1/projects/{project}/push"]) {
    const native = path.startsWith("/v1");
    app.openapi(
      scopedRoute("write", {
        method: "post",
        path,
        tags: ["online"],
        summary: "Write rows to every feature view fed by a push source (online, offline, or both)",
        request: { ...(native ? { params: ProjectParam } : {}), ...body(PushBody) },
        responses: { 200: json(RowsWritten, "Rows accepted"), ...errorResponses },
      }),
      async (c) => {
        const req = c.req.valid("json");
        const snapshot = await snapshots.getExisting(projectOf(c, deps));
        return c.json(await push(deps, snapshot, req), 200);
      },
    );
  }

  for (const path of ["/write-to-online-store", "/v1/projects/{project}/write-to-online-store"]) {
    const native = path.startsWith("/v1");
    app.openapi(
      scopedRoute("write", {
        method: "post",
        path,
        tags: ["online"],
        summary: "Write rows of one feature view to the online store",
        request: { ...(native ? { params: ProjectParam } : {}), ...body(WriteToOnlineStoreBody) },
        responses: { 200: json(RowsWritten, "Rows accepted"), ...errorResponses },
      }),
      async (c) => {
        const req = c.req.valid("json");
        const snapshot = await snapshots.getExisting(projectOf(c, deps));
        return c.json(await writeToOnlineStore(deps, snapshot, req), 200);
      },
    );
  }
}
