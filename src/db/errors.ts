import { DomainError, invalid, unavailable } from "../errors.ts";

/**
 * drizzle wraps driver errors ("Failed query: …"); the driver's own message is the one worth showing. A DomainError's
 * own message is already the one to show (its cause is the driver's error behind it).
 */
export function pgMessage(e: unknown): string {
  let err = e as { message?: string; cause?: unknown } | undefined;
  while (!(err instanceof DomainError) && err?.cause && typeof err.cause === "object") err = err.cause as typeof err;
  return err?.message ?? String(e);
}

/** SQLSTATE (or system error code) of a Postgres error, looking through drizzle's wrapper. */
export function pgCode(e: unknown): string | undefined {
  let err = e as { code?: unknown; cause?: unknown } | undefined;
  while (err && !(err instanceof DomainError)) {
    if (typeof err.code === "string") return err.code;
    err = err.cause as typeof err;
  }
  return undefined;
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "57P01",
  "57P03",
  "08006",
  "08001",
  "08003",
]);

/** True when the error says the database could not be reached, rather than that the query was wrong. */
export function isConnectionError(e: unknown): boolean {
  const code = pgCode(e);
  if (code && CONNECTION_CODES.has(code)) return true;
  const msg = pgMessage(e);
  // "Query read timeout": the client-side timeout of a pool query whose answer never came (a database that went silent).
  return /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|Client has encountered a connection error|Query read timeout/i.test(
    msg,
  );
}

/** Where a failed connection was going, from the system error behind it (`connect ECONNREFUSED 10.0.0.5:5432`). */
function address(e: unknown): string | undefined {
  let err = e as { address?: unknown; port?: unknown; cause?: unknown } | undefined;
  while (err) {
    if (typeof err.address === "string")
      return typeof err.port === "number" ? `${err.address}:${err.port}` : err.address;
    err = err.cause as typeof err;
  }
  return /(?:ENOTFOUND|EAI_AGAIN) (\S+)/.exec(pgMessage(e))?.[1];
}

/** A timed-out connect says so on the outside ("… due to connection timeout") and not in its cause, which pgMessage reads. */
function timeoutMessage(e: unknown): string | undefined {
  for (let err = e as { message?: unknown; cause?: unknown } | undefined; err; err = err.cause as typeof err)
    if (typeof err.message === "string" && /timeout|timed out/i.test(err.message)) return err.message.split("\n")[0];
  return undefined;
}

/**
 * A Postgres error as the rest of Larder should see it, classified here once: a database that cannot be reached is
 * DomainError("unavailable") naming Postgres, where and why ("Postgres at 127.0.0.1:5432 is unreachable
 * (ECONNREFUSED)"); a value Postgres refuses (SQLSTATE class 22, data exception: a NUL character in a name, a number out
 * of a column's range) is the client's invalid_argument (the statement failed, so nothing was written). Anything else:
 * undefined (not a store failure this knows).
 */
export function postgresFailure(e: unknown): DomainError | undefined {
  if (e instanceof DomainError) return undefined;
  if (isConnectionError(e)) {
    const at = address(e);
    const code = pgCode(e);
    const why = code && /^E[A-Z_]+$/.test(code) ? code : (timeoutMessage(e) ?? pgMessage(e).split("\n")[0]);
    return unavailable(`Postgres${at ? ` at ${at}` : ""} is unreachable (${why})`, e);
  }
  if (pgCode(e)?.startsWith("22")) return invalid(`invalid value: ${pgMessage(e)}`);
  return undefined;
}
