import type { Context } from "hono";
import { viewerFor } from "../../console/access.ts";
import { ASSETS, CONTENT_SECURITY_POLICY } from "../../console/assets.ts";
import { ConsolePages, KINDS, type KindPath, type PageRequest, type PageResult } from "../../console/pages.tsx";
import { declareScope } from "../access.ts";
import type { App, AppDeps } from "../app-types.ts";
import { bearer } from "../auth.ts";
import type { AppEnv } from "../env.ts";
import { toApiError } from "../errors.ts";
import { requestHeader } from "../headers.ts";

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // pages carry data read with the key that came with the request: never kept, never shared between keys
  "cache-control": "no-store",
  vary: "Authorization",
};

/**
 * GET /ui…: the console (src/console). Its pages and assets need no key, like /docs: a page shows data only to a request
 * whose key may read it, which the console checks itself (src/console/access.ts) with the same verifier and scopes.
 */
export function registerConsoleRoutes(app: App, deps: AppDeps) {
  declareScope(app, "get", "/ui", "public");
  declareScope(app, "get", "/ui/*", "public");
  const pages = new ConsolePages({
    registry: deps.registry,
    snapshots: deps.snapshots,
    db: deps.db,
    online: deps.online,
    maxEntityRows: deps.limits.maxEntityRows,
  });

  const page =
    (render: (req: PageRequest, c: Context<AppEnv>) => Promise<PageResult>) => async (c: Context<AppEnv>) => {
      const req: PageRequest = {
        viewer: { auth: deps.auth ? "apikey" : "disabled", principal: null, rejected: false } as PageRequest["viewer"],
        origin: new URL(c.req.url).origin,
        query: (name) => c.req.query(name),
        queries: (name) => c.req.queries(name) ?? [],
      };
      let result: PageResult;
      try {
        req.viewer = await viewerFor(deps.auth, bearer(requestHeader(c, "authorization")));
        result = await render(req, c);
      } catch (e) {
        const api = toApiError(e);
        if (api.status >= 500)
          c.get("logger")?.error({ request_id: c.get("requestId"), err: e }, "console page failed");
        result = await pages.error(req, api.status, api.message, undefined);
      }
      return c.body(result.html, result.status as 200, PAGE_HEADERS);
    };

  for (const asset of Object.values(ASSETS))
    app.get(asset.path, (c) =>
      c.body(asset.body, 200, {
        "content-type": asset.type,
        "x-content-type-options": "nosniff",
        // the pages ask for ?v=<hash of the content>: a new version is a new URL
        "cache-control":
          c.req.query("v") === asset.href.split("v=")[1] ? "public, max-age=31536000, immutable" : "no-cache",
      }),
    );

  const kindOf = (c: Context<AppEnv>): KindPath | undefined => {
    const k = c.req.param("kind");
    return k !== undefined && Object.hasOwn(KINDS, k) ? k : undefined;
  };
  const project = (c: Context<AppEnv>) => c.req.param("project")!;
  const name = (c: Context<AppEnv>) => c.req.param("name")!;
  const unknownPage = (req: PageRequest, c: Context<AppEnv>) =>
    pages.error(req, 404, `There is no console page at ${c.req.path}.`, c.req.param("project"));

  /** A page about one kind of object (`entities`, `feature-views`, …); another word there is an unknown page. */
  const byKind =
    (render: (req: PageRequest, project: string, kind: KindPath, c: Context<AppEnv>) => Promise<PageResult>) =>
    (req: PageRequest, c: Context<AppEnv>) => {
      const kind = kindOf(c);
      return kind ? render(req, project(c), kind, c) : unknownPage(req, c);
    };
  const routes: [string, (req: PageRequest, c: Context<AppEnv>) => Promise<PageResult>][] = [
    ["/ui", (req) => pages.projects(req)],
    ["/ui/", (req) => pages.projects(req)],
    ["/ui/search", (req) => pages.search(req)],
    ["/ui/p/:project", (req, c) => pages.overview(req, project(c))],
    ["/ui/p/:project/lineage", (req, c) => pages.lineage(req, project(c))],
    ["/ui/p/:project/jobs", (req, c) => pages.jobs(req, project(c))],
    ["/ui/p/:project/playground", (req, c) => pages.playground(req, project(c))],
    ["/ui/p/:project/:kind", byKind((req, p, kind) => pages.list(req, p, kind))],
    ["/ui/p/:project/:kind/:name", byKind((req, p, kind, c) => pages.detail(req, p, kind, name(c)))],
    ["/ui/p/:project/:kind/:name/versions", byKind((req, p, kind, c) => pages.versions(req, p, kind, name(c)))],
    ["/ui/*", unknownPage],
  ];
  for (const [path, render] of routes) app.get(path, page(render));
}
