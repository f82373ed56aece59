import { type KeyVerifier, type Principal, type Scope, scopeAllows } from "../auth/keys.ts";

/**
 * Who is looking at a console page. The pages themselves are public (like /docs); what they show is not: a page shows
 * data only to a request that carries a key allowed to read it, exactly as the JSON API would judge that key.
 */
export type Viewer =
  | { auth: "disabled" }
  | { auth: "apikey"; principal: Principal }
  /** No key sent, or one that is unknown or revoked (`rejected`): the page is a locked shell asking for one. */
  | { auth: "apikey"; principal: null; rejected: boolean };

export async function viewerFor(verifier: KeyVerifier | null | undefined, token: string | undefined): Promise<Viewer> {
  if (!verifier) return { auth: "disabled" };
  if (!token) return { auth: "apikey", principal: null, rejected: false };
  const principal = await verifier.verify(token);
  return principal ? { auth: "apikey", principal } : { auth: "apikey", principal: null, rejected: true };
}

export const signedIn = (v: Viewer): boolean => v.auth === "disabled" || v.principal !== null;

/** Whether the viewer may read a project (a key bound to one project sees that one only). */
export function canRead(v: Viewer, project: string): boolean {
  if (v.auth === "disabled") return true;
  return v.principal !== null && (v.principal.project === null || v.principal.project === project);
}

/** Whether the viewer may do what needs `scope` in `project` (e.g. write: materialise). */
export function can(v: Viewer, scope: Scope, project: string): boolean {
  if (v.auth === "disabled") return true;
  return canRead(v, project) && v.principal !== null && scopeAllows(v.principal.scope, scope);
}
