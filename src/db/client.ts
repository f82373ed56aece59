import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import pg from "pg";
import { isConnectionError } from "./errors.ts";
import * as schema from "./schema.ts";

export type Schema = typeof schema;
/** Both drivers (node-postgres, PGlite) give this: services use only it, so one code path serves both modes. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export interface Database {
  db: Db;
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Only for the node-postgres driver: raw clients for cursors and COPY-like streaming. */
  pool?: pg.Pool;
  /** Only for PGlite (src/embedded/pglite.ts): the embedded client (multi-statement `exec`). */
  pglite?: PGlite;
}

export const MIGRATIONS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../migrations");
export const MIGRATION_CONFIG = {
  migrationsFolder: MIGRATIONS_FOLDER,
  migrationsSchema: "larder",
  migrationsTable: "__migrations",
};

// int8 (bigint) and numeric come back as strings by default; counts and sizes here fit a double.
pg.types.setTypeParser(20, (v) => {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
});

export interface PgOptions {
  /** Milliseconds a statement may run before Postgres cancels it (0: no limit). */
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  max?: number;
}

type PoolConnectCallback = (
  err: Error | undefined,
  client: pg.PoolClient | undefined,
  done: (release?: Error | boolean) => void,
) => void;

type ClientState = { release?: (err?: Error | boolean) => void; lost?: unknown };
/** Per client: the release of its current checkout (guarded to run once), and why it was given up, once it was. */
const clientState = new WeakMap<pg.PoolClient, ClientState>();

/**
 * drizzle's node-postgres `transaction()` sends BEGIN before its try/finally, so when BEGIN fails (a pooled connection
 * that died while idle, Postgres going away) the client is never released: the pool loses a slot for good, a few outages
 * later every Postgres call waits for a connection that never comes, and `pool.end()` never returns. So a client checked
 * out here goes back to the pool (which destroys it) as soon as a query on it fails that way; after that its queries
 * (drizzle's ROLLBACK) fail with that same error, and its `release()` is a no-op instead of pg-pool's double-release throw.
 */
class ReleasingPool extends pg.Pool {
  /** host:port of the URL, for errors that carry none (set after construction). */
  target?: { host: string; port: number };

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: PoolConnectCallback): void;
  override connect(callback?: PoolConnectCallback): Promise<pg.PoolClient> | undefined {
    if (!callback)
      return super.connect().then(releaseOnLostConnection, (e) => {
        throw this.withAddress(e);
      });
    // pool.query's path: it releases with the error itself
    super.connect((err, client, done) => callback(err && this.withAddress(err), client, done));
    return undefined;
  }

  /**
   * A connect that timed out ("timeout exceeded when trying to connect") carries no address, unlike a refused one: it
   * gets the pool's, so postgresFailure (src/db/errors.ts) can say which Postgres did not answer.
   */
  private withAddress(e: Error): Error {
    const err = e as Error & { address?: unknown; port?: unknown };
    if (err.address === undefined && this.target) {
      err.address = this.target.host;
      err.port = this.target.port;
    }
    return err;
  }
}

function releaseOnLostConnection(client: pg.PoolClient): pg.PoolClient {
  let state = clientState.get(client);
  if (!state) {
    const s: ClientState = {};
    const query = client.query as (...a: unknown[]) => unknown;
    client.query = function (this: pg.PoolClient, ...args: unknown[]) {
      const plain =
        typeof args.at(-1) !== "function" && typeof (args[0] as { submit?: unknown })?.submit !== "function";
      if (s.lost !== undefined && plain) return Promise.reject(s.lost);
      const result = query.apply(this, args);
      if (result instanceof Promise)
        result.catch((e) => {
          // its connection is gone, or its answer never came (a read timeout): the client is of no further use
          if (s.lost !== undefined || !isConnectionError(e)) return;
          s.lost = e;
          s.release?.(e as Error);
        });
      return result;
    } as typeof client.query;
    clientState.set(client, s);
    state = s;
  }
  const st = state;
  const release = client.release;
  st.release = (err) => {
    st.release = undefined;
    release(err);
  };
  client.release = (err) => st.release?.(err);
  return client;
}

function urlTarget(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    // no host in the URL: a Unix socket (named by PGHOST, or the default one), which errors name themselves
    return u.hostname ? { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 5432) } : undefined;
  } catch {
    return undefined;
  }
}

export function connectPostgres(url: string, opts: PgOptions = {}): Database {
  const pool = new ReleasingPool({
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    statement_timeout: opts.statementTimeoutMs ?? 0,
    // Postgres enforces statement_timeout only while it is reachable; this bounds a call whose answer never comes.
    query_timeout: opts.statementTimeoutMs ? opts.statementTimeoutMs + 5000 : undefined,
    keepAlive: true,
    idleTimeoutMillis: 30_000,
    application_name: "larder",
  });
  pool.target = urlTarget(url);
  // An idle client losing its connection (Postgres restarted) must not crash the process.
  pool.on("error", () => {});
  // A checked-out client (in a transaction, between queries) losing its connection emits "error" too: without a
  // listener that would end the process. Its next query fails instead, and the pool drops it when it is released.
  pool.on("connect", (client) => client.on("error", () => {}));
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  return {
    db,
    pool,
    migrate: () => migratePg(db as never, MIGRATION_CONFIG),
    close: () => pool.end(),
  };
}
