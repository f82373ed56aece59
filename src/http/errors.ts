import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";
import { isConnectionError, pgCode, pgMessage } from "../db/errors.ts";
import { DomainError, type ErrorCode, type ErrorDetail } from "../errors.ts";
import { formatPath } from "../registry/validate.ts";
import type { AppEnv } from "./env.ts";

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "invalid_argument" }),
      message: z.string().openapi({ example: "entities.driver_id: 1.5 is not an integer" }),
      details: z.array(z.object({ path: z.string().optional(), message: z.string() }).passthrough()),
    }),
  })
  .openapi("Error");
export type ErrorBody = z.infer<typeof ErrorBody>;

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_argument: 400,
  invalid_definitions: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  internal: 500,
  unavailable: 503,
};

/** An error with an HTTP status: what `onError` answers. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }

  static from(e: DomainError): ApiError {
    return new ApiError(STATUS[e.code], e.code, e.message, e.details);
  }

  body(): ErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export function zodErrorToApi(error: ZodError, where: string): ApiError {
  const details = error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  const first = details[0];
  const message = first ? `invalid ${where}: ${first.path}: ${first.message}` : `invalid ${where}`;
  return new ApiError(400, "invalid_argument", message, details);
}

function isRedisConnectionError(e: unknown): boolean {
  const msg = (e as Error)?.message ?? "";
  // the last ones come from Redis Cluster and Sentinel during a failover (a node down, slots unserved, a demoted master)
  return /Connection is closed|ECONNREFUSED|Stream isn't writeable|max retries|Command timed out|enableOfflineQueue|CLUSTERDOWN|Cluster isn't ready|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes|All sentinels are unreachable|READONLY|MASTERDOWN|LOADING|TRYAGAIN|while the cluster is down/i.test(
    msg,
  );
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof DomainError) return ApiError.from(err);
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    if (status === 413) return new ApiError(413, "payload_too_large", "request body is too large");
    // hono's JSON validator: said as the lookup routes (which parse for themselves) say it
    if (status === 400 && /^Malformed JSON/.test(err.message))
      return new ApiError(400, "invalid_argument", "malformed JSON body");
    const code = status === 401 ? "unauthenticated" : status === 404 ? "not_found" : "invalid_argument";
    return new ApiError(status, code, err.message || "bad request");
  }
  if (err instanceof SyntaxError) return new ApiError(400, "invalid_argument", `malformed JSON body: ${err.message}`);
  if (isConnectionError(err)) return new ApiError(503, "unavailable", "the registry database is unavailable");
  // Postgres class 22 (data exception): a value the client sent that Postgres refuses, e.g. a NUL character in a
  // name or a number out of a column's range. The statement failed, so nothing was written.
  if (pgCode(err)?.startsWith("22")) return new ApiError(400, "invalid_argument", `invalid value: ${pgMessage(err)}`);
  if (isRedisConnectionError(err)) return new ApiError(503, "unavailable", "the online store is unavailable");
  return new ApiError(500, "internal", "internal error");
}

export function onError(err: Error, c: Context<AppEnv>) {
  const api = toApiError(err);
  if (api.status >= 500) c.get("logger")?.error({ request_id: c.get("requestId"), err }, "request failed");
  return c.json(api.body(), api.status);
}
