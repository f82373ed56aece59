/** drizzle wraps driver errors ("Failed query: …"); the driver's own message is the one worth showing. */
export function pgMessage(e: unknown): string {
  let err = e as { message?: string; cause?: unknown } | undefined;
  while (err?.cause && typeof err.cause === "object") err = err.cause as typeof err;
  return err?.message ?? String(e);
}

/** SQLSTATE of a Postgres error, looking through drizzle's wrapper. */
export function pgCode(e: unknown): string | undefined {
  let err = e as { code?: unknown; cause?: unknown } | undefined;
  while (err) {
    if (typeof err.code === "string") return err.code;
    err = err.cause as typeof err;
  }
  return undefined;
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
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
