import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";
import { postgresFailure } from "../db/errors.ts";
import { DomainError, ErrorCode, type ErrorDetail, formatIssue } from "../errors.ts";
import { formatPath } from "../registry/validate.ts";
import type { AppEnv } from "./env.ts";

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(ErrorCode.options).openapi({ example: "invalid_argument" }),
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
  timeout: 504,
};

/** An error with an HTTP status: what `onError` answers. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
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
  const message = first ? `invalid ${where}: ${formatIssue(first.path, first.message)}` : `invalid ${where}`;
  return new ApiError(400, "invalid_argument", message, details);
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
  // Redis failures arrive as DomainErrors already (the online store classifies them, src/online/redis-errors.ts);
  // Postgres is reached through drizzle from many places, so its errors are classified here, by db/errors.ts.
  const store = postgresFailure(err);
  if (store) return ApiError.from(store);
  return new ApiError(500, "internal", "internal error");
}

/** When each unavailability message was last logged: a store outage is a line a minute, not one per request. */
const unavailableLoggedAt = new Map<string, number>();
const UNAVAILABLE_LOG_MS = 60_000;

export function onError(err: Error, c: Context<AppEnv>) {
  const api = toApiError(err);
  if (api.status === 503) {
    const now = Date.now();
    if (now - (unavailableLoggedAt.get(api.message) ?? 0) >= UNAVAILABLE_LOG_MS) {
      if (unavailableLoggedAt.size >= 100) unavailableLoggedAt.clear();
      unavailableLoggedAt.set(api.message, now);
      c.get("logger")?.warn(
        { request_id: c.get("requestId"), err: api.message },
        "request failed: a store is unavailable",
      );
    }
  } else if (api.status >= 500) c.get("logger")?.error({ request_id: c.get("requestId"), err }, "request failed");
  return c.json(api.body(), api.status);
}
