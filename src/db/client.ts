import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import pg from "pg";
import { type DataDirLock, lockDataDir } from "../embedded/lock.ts";
import * as schema from "./schema.ts";

export type Schema = typeof schema;
/** Both drivers (node-postgres, PGlite) give this: services use only it, so one code path serves both modes. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export interface Database {
  db: Db;
  driver: "pg" | "pglite";
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Only for the node-postgres driver: raw clients for cursors and COPY-like streaming. */
  pool?: pg.Pool;
  /** Only for PGlite: the embedded client (multi-statement `exec`), and the data directory's lock it holds. */
  pglite?: PGlite;
  lock?: DataDirLock;
}

export const MIGRATIONS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../migrations");
const MIGRATION_CONFIG = {
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

export function connectPostgres(url: string, opts: PgOptions = {}): Database {
  const pool = new pg.Pool({
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
  // An idle client losing its connection (Postgres restarted) must not crash the process.
  pool.on("error", () => {});
  // A checked-out client (in a transaction, between queries) losing its connection emits "error" too: without a
  // listener that would end the process. Its next query fails instead, and the pool drops it when it is released.
  pool.on("connect", (client) => client.on("error", () => {}));
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  return {
    db,
    driver: "pg",
    pool,
    migrate: () => migratePg(db as never, MIGRATION_CONFIG),
    close: () => pool.end(),
  };
}

/**
 * The embedded Postgres in `dataDir` (database files in `dataDir/pgdata`). Takes the directory's lock first, so a second
 * process gets a clear DataDirBusyError instead of corrupting the files; `command` names the holder in that message.
 */
export async function openPglite(dataDir: string, opts: { command?: string } = {}): Promise<Database> {
  mkdirSync(dataDir, { recursive: true });
  const lock = lockDataDir(dataDir, opts.command ?? "cli");
  try {
    return await openPgliteAt(path.join(dataDir, "pgdata"), lock);
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** One PGlite database in `dir`, created on first use; closing it releases `lock` when one is given. */
export async function openPgliteAt(dir: string, lock?: DataDirLock): Promise<Database> {
  const [{ PGlite, types }, { drizzle }, { migrate }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("drizzle-orm/pglite"),
    import("drizzle-orm/pglite/migrator"),
  ]);
  const client = new PGlite(dir, {
    // Values come back as node-postgres gives them (see the int8 parser above), so code above the driver is the same.
    parsers: {
      [types.INT8]: (v: string) => {
        const n = Number(v);
        return Number.isSafeInteger(n) ? n : v;
      },
      [types.BYTEA]: (v: string) => Buffer.from(v.slice(2), "hex"), // text form is \x…; pg gives a Buffer
    },
  });
  await client.waitReady;
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    driver: "pglite",
    pglite: client,
    ...(lock ? { lock } : {}),
    migrate: () => migrate(db as never, MIGRATION_CONFIG),
    close: async () => {
      try {
        await client.close();
      } finally {
        lock?.release();
      }
    },
  };
}
