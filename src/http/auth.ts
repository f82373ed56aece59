import type { Context } from "hono";
import { type KeyVerifier, type Scope, scopeAllows } from "../auth/keys.ts";
import type { AppEnv } from "./env.ts";
import { ApiError } from "./errors.ts";
import { requestHeader } from "./headers.ts";

/** Paths anyone may call: probes, the API description and the metrics scrape. */
export const PUBLIC_PATHS = new Set(["/health", "/health/live", "/openapi.json", "/docs", "/metrics"]);

/**
 * The console's pages and assets (GET /ui…) need no key, like /docs: a page shows data only to a request whose key may
 * read it, which the console checks itself (src/console/access.ts) with the same verifier and scopes.
 */
export const isConsolePath = (method: string, path: string) =>
  (method === "GET" || method === "HEAD") && (path === "/ui" || path.startsWith("/ui/"));

/** The last path segment of POST operations, by the scope they need. Any other write-like request needs admin. */
const READ_OPS = new Set([
  "get-online-features",
  "online-features",
  "historical-features",
  "retrieve-online-documents",
]);
const WRITE_OPS = new Set(["push", "write-to-online-store", "materialize", "materialize-incremental"]);

export interface Access {
  scope: Scope;
  /** The project the request acts on; null when it acts on none in particular (e.g. listing projects, keys). */
  project: string | null;
}

/**
 * What a request needs, from its method and path alone: auth runs before routing, so it never depends on a handler.
 * The root Feast endpoints act on the server's default project; `/v1/projects/{p}/…` on `p`.
 * `path` is Hono's `c.req.path` (the decoded path the router matches), so both see the same segments.
 */
export function requiredAccess(method: string, path: string, defaultProject: string): Access | null {
  if (PUBLIC_PATHS.has(path) || isConsolePath(method.toUpperCase(), path)) return null;
  const seg = path.split("/").filter((s) => s !== "");
  let project: string | null = defaultProject;
  let op = seg[seg.length - 1] ?? "";
  if (seg[0] === "v1" && seg[1] === "projects") {
    project = seg[2] ?? null;
    op = seg[3] === undefined ? "" : (seg[seg.length - 1] ?? "");
  } else if (seg[0] === "v1") {
    project = null; // e.g. /v1/keys
  }
  const m = method.toUpperCase();
  if (m === "GET" || m === "HEAD") return { scope: seg[0] === "v1" && seg[1] === "keys" ? "admin" : "read", project };
  if (m === "POST" && READ_OPS.has(op)) return { scope: "read", project };
  if (m === "POST" && WRITE_OPS.has(op)) return { scope: "write", project };
  return { scope: "admin", project };
}

/** The key of an `Authorization: Bearer <key>` header; undefined when there is none or it has another form. */
export function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m?.[1];
}

const unauthenticated = (message: string) => new ApiError(401, "unauthenticated", message);

/**
 * API-key auth: `Authorization: Bearer lk_…`. Throws 401 when the key is missing, malformed, unknown or revoked, 403 when
 * the key lacks the scope or is bound to another project; otherwise puts the key's principal on the context. Keys are
 * verified from memory (see KeyCache). Called by the front door, before routing: it never depends on a handler.
 */
export function createAuthorizer(verifier: KeyVerifier, defaultProject: string): (c: Context<AppEnv>) => Promise<void> {
  // What each method and path needs, worked out once: a server sees few distinct paths (and the memo is bounded, as
  // clients may send any path).
  const needs = new Map<string, Access | null>();
  const accessFor = (method: string, path: string): Access | null => {
    const key = `${method} ${path}`;
    let need = needs.get(key);
    if (need === undefined) {
      need = requiredAccess(method, path, defaultProject);
      if (needs.size >= 1024) needs.clear();
      needs.set(key, need);
    }
    return need;
  };
  return (c) => authorize(c, verifier, accessFor(c.req.method, c.req.path));
}

async function authorize(c: Context<AppEnv>, verifier: KeyVerifier, need: Access | null): Promise<void> {
  if (!need) return;
  const header = requestHeader(c, "authorization");
  const token = bearer(header);
  if (!token) {
    c.header("WWW-Authenticate", 'Bearer realm="larder"');
    throw unauthenticated(
      header
        ? "the Authorization header must be `Bearer <key>`"
        : "an API key is required: send `Authorization: Bearer <key>`",
    );
  }
  const principal = await verifier.verify(token);
  if (!principal) {
    c.header("WWW-Authenticate", 'Bearer realm="larder", error="invalid_token"');
    throw unauthenticated("the API key is unknown or revoked");
  }
  c.set("auth", { keyId: principal.keyId, scope: principal.scope, project: principal.project });
  if (!scopeAllows(principal.scope, need.scope))
    throw new ApiError(
      403,
      "permission_denied",
      `this key has scope ${principal.scope}; ${c.req.method} ${c.req.path} needs ${need.scope}`,
    );
  if (principal.project !== null && principal.project !== need.project)
    throw new ApiError(
      403,
      "permission_denied",
      need.project === null
        ? `this key is limited to project ${principal.project}; ${c.req.method} ${c.req.path} is not`
        : `this key is limited to project ${principal.project}, not ${need.project}`,
    );
}
