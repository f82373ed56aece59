import { randomUUID } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { matchedRoutes } from "hono/route";
import type { KeyVerifier } from "../auth/keys.ts";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import type { Access } from "./access.ts";
import { createAuthorizer } from "./auth.ts";
import type { AppEnv } from "./env.ts";
import { ApiError, onError } from "./errors.ts";
import { requestHeader, setResponseHeader } from "./headers.ts";
import { jsonDepthExceeds, MAX_JSON_DEPTH } from "./json-depth.ts";
import type { Metrics } from "./metrics.ts";

export interface FrontDoorOptions {
  logger: Logger;
  metrics: Metrics;
  lifecycle?: Lifecycle;
  auth?: KeyVerifier | null;
  /** What a request needs (see access.ts). */
  access: (method: string, path: string) => Access | null;
  maxBodyBytes: number;
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

const VALID_REQUEST_ID = /^[\w\-=]{1,255}$/;
const PLAIN_JSON_TYPE = /^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i;

/**
 * Everything every request goes through, in one middleware (one layer of Hono's chain rather than five, which a
 * 1-entity lookup notices): its id, its log line and metrics, the API key, the body's size, and reading the body as JSON.
 *
 * - `x-request-id`: the client's when it is a sane token, else a new UUID; echoed on the answer and on every log line.
 * - One JSON log line per request (headers are never logged: keys travel in Authorization) and the request metrics.
 * - Auth (when on): see `createAuthorizer`.
 * - Body size: a declared length is checked from the header alone (Node's parser never reads past it); bodies without
 *   one (chunked) are counted as they stream, by Hono's bodyLimit.
 * - Every body is read as JSON whatever its content-type says, as Feast's feature server reads it: Feast's own docs send
 *   lookups with `curl -d '{…}'`, labelled form-urlencoded, and clients written against Feast must work unchanged. Bodies
 *   nested deeper than MAX_JSON_DEPTH are refused before any validator parses them (the text is cached for them).
 */
export function frontDoor(opts: FrontDoorOptions): MiddlewareHandler<AppEnv> {
  const { logger, metrics, lifecycle, auth, access, maxBodyBytes } = opts;
  const tooLarge = () => {
    throw new ApiError(413, "payload_too_large", `request body is larger than ${maxBodyBytes} bytes`);
  };
  const authorize = auth ? createAuthorizer(auth, access) : null;
  const limitStreamedBody = bodyLimit({ maxSize: maxBodyBytes, onError: tooLarge });

  const readBody = async (c: Context<AppEnv>) => {
    const length = requestHeader(c, "content-length");
    if (length !== undefined && requestHeader(c, "transfer-encoding") === undefined) {
      if (Number.parseInt(length, 10) > maxBodyBytes) tooLarge();
    } else {
      // bodyLimit swaps in a counting body and calls next once it is set up: the text is read after it returns
      await limitStreamedBody(c, async () => {});
    }
    const type = requestHeader(c, "content-type");
    if (!type || !PLAIN_JSON_TYPE.test(type)) relabelAsJson(c);
    if (jsonDepthExceeds(await c.req.text(), MAX_JSON_DEPTH))
      throw new ApiError(400, "invalid_argument", `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`);
  };

  return async (c, next) => {
    const started = performance.now();
    let id = requestHeader(c, "x-request-id");
    if (id === undefined || !VALID_REQUEST_ID.test(id)) id = randomUUID();
    c.set("requestId", id);
    c.set("logger", logger);
    setResponseHeader(c, "x-request-id", id);
    let admitted = true;
    try {
      if (authorize) await authorize(c);
      const method = c.req.method;
      if (method !== "GET" && method !== "HEAD") await readBody(c);
    } catch (e) {
      // Hono's chain answers what later layers throw; what this one throws is answered here, so it is logged too.
      if (!(e instanceof Error)) throw e;
      c.res = onError(e, c);
      admitted = false;
    }
    if (admitted) await next();
    // Once stopping, answers ask keep-alive clients to reconnect (to a server that is not stopping).
    if (lifecycle?.stopping) c.header("Connection", "close");
    const status = c.res.status;
    const seconds = (performance.now() - started) / 1000;
    const route = routeLabel(c);
    metrics.request(c.req.method, route, status, seconds);
    const fields = {
      request_id: id,
      method: c.req.method,
      route,
      path: c.req.path,
      status,
      duration_ms: Math.round(seconds * 100_000) / 100,
      key_id: c.get("auth")?.keyId,
    };
    if (status >= 500) logger.error(fields, "request");
    else logger.info(fields, "request");
  };
}

function relabelAsJson(c: Context<AppEnv>): void {
  const raw = c.req.raw;
  try {
    raw.headers.set("content-type", "application/json");
  } catch {
    // a Request whose headers are immutable: an equal one with the new label
    const headers = new Headers(raw.headers);
    headers.set("content-type", "application/json");
    c.req.raw = new Request(raw, { headers });
  }
}
