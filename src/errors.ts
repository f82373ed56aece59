import { z } from "zod";

/**
 * A required field that is absent reads "is missing" (zod's own words are "expected record, received undefined"), in
 * every schema that gives no message of its own; where a path is shown, formatIssue puts it first: "entity_df is missing".
 */
export const MISSING = "is missing";
z.config({ customError: (iss) => (iss.code === "invalid_type" && iss.input === undefined ? MISSING : undefined) });

/** "path: message", or "path is missing". */
export const formatIssue = (path: string, message: string) =>
  message === MISSING ? `${path} ${MISSING}` : path ? `${path}: ${message}` : message;

/**
 * Domain errors: thrown by services, know nothing of HTTP. The HTTP layer maps `code` to a status in one place.
 */
export const ErrorCode = z.enum([
  "invalid_argument",
  "invalid_definitions",
  "not_found",
  "conflict",
  "unauthenticated",
  "permission_denied",
  "payload_too_large",
  "unavailable",
  "timeout",
  "internal",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export interface ErrorDetail {
  path?: string;
  message: string;
  [k: string]: unknown;
}

export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
    /** `cause`: the driver's error behind it (a store that could not be reached). */
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalid = (message: string, details: ErrorDetail[] = []) =>
  new DomainError("invalid_argument", message, details);
export const notFound = (message: string) => new DomainError("not_found", message);
export const conflict = (message: string) => new DomainError("conflict", message);
/** A store could not be reached; `cause` is the driver's error (kept for logs, never shown to clients). */
export const unavailable = (message: string, cause?: unknown) =>
  new DomainError("unavailable", message, [], cause === undefined ? undefined : { cause });
