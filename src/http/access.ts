import { createRoute, type RouteConfig } from "@hono/zod-openapi";
import type { Scope } from "../auth/keys.ts";
import type { App } from "./env.ts";

/**
 * Who may call a route: anyone (`public`), or a key with at least that scope. Declared with each route, once: auth's
 * table, the scope paragraph of the API description and the tests' expectations all come from these declarations.
 */
export type RouteScope = "public" | Scope;

/** The OpenAPI extension a route's scope is written under (so it shows in /openapi.json too). */
export const SCOPE_EXTENSION = "x-larder-scope";

/**
 * `createRoute` with the route's scope declared: every OpenAPI route is built with this (createApp refuses one without
 * a scope). Public routes are documented with no security requirement.
 */
export function scopedRoute<R extends RouteConfig>(scope: RouteScope, route: R): R & { [SCOPE_EXTENSION]: RouteScope } {
  return createRoute({ ...route, ...(scope === "public" ? { security: [] } : {}), [SCOPE_EXTENSION]: scope });
}

export interface RouteAccess {
  method: string;
  /** OpenAPI form: `/v1/projects/{project}/push`; a final `/*` stands for any path below (`/ui/*`). */
  path: string;
  scope: RouteScope;
}

/** Routes outside the OpenAPI document (the document itself, the docs page), by app. */
const undocumented = new WeakMap<App, RouteAccess[]>();

/** Declares the scope of a route registered without `scopedRoute` (`app.get`, `app.doc31`): call it beside the route. */
export function declareScope(app: App, method: string, path: string, scope: RouteScope): void {
  let list = undocumented.get(app);
  if (!list) {
    list = [];
    undocumented.set(app, list);
  }
  list.push({ method: method.toUpperCase(), path, scope });
}

/** Every route's declared access: the OpenAPI routes' and the undocumented ones'. Throws for a route with no scope. */
export function routeAccess(app: App): RouteAccess[] {
  const out: RouteAccess[] = [];
  for (const d of app.openAPIRegistry.definitions) {
    if (d.type !== "route") continue;
    const scope = (d.route as Record<string, unknown>)[SCOPE_EXTENSION] as RouteScope | undefined;
    if (!scope)
      throw new Error(`${d.route.method.toUpperCase()} ${d.route.path} declares no scope: build it with scopedRoute`);
    out.push({ method: d.route.method.toUpperCase(), path: d.route.path, scope });
  }
  return [...out, ...(undocumented.get(app) ?? [])];
}

export interface Access {
  scope: Scope;
  /** The project the request acts on; null when it acts on none in particular (e.g. listing projects). */
  project: string | null;
}

interface CompiledAccess {
  method: string;
  /** Path segments; null stands for a `{param}`. */
  segments: (string | null)[];
  /** A `/*` route: any path with these first segments and at least one more. */
  below: boolean;
  /** Index of the `{project}` segment, or -1. */
  projectAt: number;
  scope: RouteScope;
}

/**
 * What a request needs, from its method and path alone (auth runs before routing, so it never depends on a handler),
 * looked up in the declared routes. A route with `{project}` acts on that project; the root Feast endpoints on the
 * server's default project; other `/v1/…` routes on none. A path no route declares needs a read key (GET, HEAD) or an
 * admin key: unknown paths tell nothing to a caller without one.
 */
export function accessResolver(
  routes: RouteAccess[],
  defaultProject: string,
): (method: string, path: string) => Access | null {
  const compiled: CompiledAccess[] = routes.map((r) => {
    const below = r.path.endsWith("/*");
    const segments = (below ? r.path.slice(0, -2) : r.path)
      .split("/")
      .filter((s) => s !== "")
      .map((s) => (s.startsWith("{") ? null : s));
    return {
      method: r.method,
      segments,
      below,
      projectAt: r.path
        .split("/")
        .filter((s) => s !== "")
        .indexOf("{project}"),
      scope: r.scope,
    };
  });
  return (method, path) => {
    const m = method.toUpperCase() === "HEAD" ? "GET" : method.toUpperCase();
    const seg = path.split("/").filter((s) => s !== "");
    for (const r of compiled) {
      if (r.method !== m || (r.below ? seg.length <= r.segments.length : r.segments.length !== seg.length)) continue;
      if (!r.segments.every((s, i) => s === null || s === seg[i])) continue;
      if (r.scope === "public") return null;
      const project = r.projectAt >= 0 ? seg[r.projectAt]! : seg[0] === "v1" ? null : defaultProject;
      return { scope: r.scope, project };
    }
    const project = seg[0] === "v1" ? (seg[1] === "projects" ? (seg[2] ?? null) : null) : defaultProject;
    return { scope: m === "GET" ? "read" : "admin", project };
  };
}

/** The scope paragraph of the API description, from the declarations. */
export function describeScopes(routes: RouteAccess[]): string {
  const by = (scope: RouteScope) =>
    [...new Set(routes.filter((r) => r.scope === scope).map((r) => `\`${r.method} ${r.path}\``))].join(", ");
  return (
    "**Auth.** Unless the server runs with `LARDER_AUTH=disabled`, every endpoint needs `Authorization: Bearer <key>`, " +
    `except these: ${by("public")}. Keys are made with \`larder keys create --scope read|write|admin [--project P]\`. ` +
    `Scopes nest (a write key may also read, an admin key may do anything): \`read\` — ${by("read")}; ` +
    `\`write\` — also ${by("write")}; \`admin\` — also ${by("admin")}. ` +
    "A key made with `--project P` works only on project P (the root endpoints act on the server's `LARDER_PROJECT`). " +
    "No, unknown or revoked key: 401; a key without the scope or for another project: 403."
  );
}
