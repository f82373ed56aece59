import { sql } from "drizzle-orm";
import pg from "pg";
import type { Db } from "../db/client.ts";
import { DomainError } from "../errors.ts";
import { rowsOf } from "./sql.ts";

/**
 * Why a piece of offline work stopped early, as the error it ends with: a timeout is the caller's deadline, anything
 * else is the caller going away (a closed connection, Ctrl-C).
 */
export function cancelled(signal: AbortSignal): DomainError {
  if ((signal.reason as { name?: string } | undefined)?.name === "TimeoutError")
    return new DomainError("timeout", "cancelled: the request ran past its time limit (LARDER_REQUEST_TIMEOUT_MS)");
  return new DomainError("unavailable", "cancelled: the caller went away");
}

/**
 * Runs `work` (statements on `tx`, one checked-out connection) so that `signal` aborting cancels the statement running
 * on that connection: Postgres goes on with a query whose client is gone until it has a row to send, which for a
 * join's sort may be minutes. The cancel goes through another pooled connection, and only while `work` runs, so it can
 * never hit a statement of whoever gets the connection next. PGlite runs in this process: nothing to cancel there
 * beyond not starting the next statement.
 */
export async function cancellable<T>(
  db: Db,
  tx: Pick<Db, "execute">,
  signal: AbortSignal | undefined,
  work: () => Promise<T>,
): Promise<T> {
  if (!signal) return work();
  if (signal.aborted) throw cancelled(signal);
  const pool = (db as unknown as { $client?: unknown }).$client;
  if (!(pool instanceof pg.Pool)) return work().finally(() => signal.throwIfAborted());
  const [row] = rowsOf<{ pid: number }>(await tx.execute(sql`SELECT pg_backend_pid() AS pid`));
  let running = true;
  let cancelling: Promise<unknown> | undefined;
  const onAbort = () => {
    if (running) cancelling = pool.query("SELECT pg_cancel_backend($1)", [row!.pid]).catch(() => {});
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await work();
  } catch (e) {
    if (signal.aborted) throw cancelled(signal);
    throw e;
  } finally {
    running = false;
    signal.removeEventListener("abort", onAbort);
    await cancelling;
  }
}
