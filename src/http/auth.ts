import type { Context } from "hono";
import { type KeyVerifier, scopeAllows } from "../auth/keys.ts";
import type { Access } from "./access.ts";
import type { AppEnv } from "./env.ts";
import { ApiError } from "./errors.ts";
import { requestHeader } from "./headers.ts";

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
 * verified from memory (see KeyCache). Called by the front door, before routing: what a request needs comes from the
 * scopes routes declare (see access.ts), looked up by method and path.
 */
export function createAuthorizer(
  verifier: KeyVerifier,
  requiredAccess: (method: string, path: string) => Access | null,
): (c: Context<AppEnv>) => Promise<void> {
  // What each method and path needs, worked out once: a server sees few distinct paths (and the memo is bounded, as
  // clients may send any path).
  const needs = new Map<string, Access | null>();
  const accessFor = (method: string, path: string): Access | null => {
    const key = `${method} ${path}`;
    let need = needs.get(key);
    if (need === undefined) {
      need = requiredAccess(method, path);
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
