/**
 * Domain errors: thrown by services, know nothing of HTTP. The HTTP layer maps `code` to a status in one place.
 */
export type ErrorCode =
  | "invalid_argument"
  | "invalid_definitions"
  | "not_found"
  | "conflict"
  | "unauthenticated"
  | "permission_denied"
  | "payload_too_large"
  | "unavailable"
  | "internal";

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
  ) {
    super(message);
  }
}

export const invalid = (message: string, details: ErrorDetail[] = []) =>
  new DomainError("invalid_argument", message, details);
export const notFound = (message: string) => new DomainError("not_found", message);
export const conflict = (message: string) => new DomainError("conflict", message);
export const unavailable = (message: string) => new DomainError("unavailable", message);
