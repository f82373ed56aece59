import { mkdirSync } from "node:fs";
import path from "node:path";
import { type Database, type Db, MIGRATION_CONFIG, type Schema } from "../db/client.ts";
import * as schema from "../db/schema.ts";
import { type DataDirLock, lockDataDir } from "./lock.ts";

/** One PGlite database in `dir`, created on first use. Behind the same `Database` interface as Postgres. */
export async function openPgliteAt(dir: string): Promise<Database> {
  const [{ PGlite, types }, { drizzle }, { migrate }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("drizzle-orm/pglite"),
    import("drizzle-orm/pglite/migrator"),
  ]);
  const client = new PGlite(dir, {
    // Values come back as node-postgres gives them (see the int8 parser in src/db/client.ts), so code above the driver
    // is the same.
    parsers: {
      [types.INT8]: (v: string) => {
        const n = Number(v);
        return Number.isSafeInteger(n) ? n : v;
      },
      [types.BYTEA]: (v: string) => Buffer.from(v.slice(2), "hex"), // text form is \x…; pg gives a Buffer
    },
  });
  await client.waitReady;
  const db = drizzle<Schema>(client, { schema }) as unknown as Db;
  return {
    db,
    pglite: client,
    migrate: () => migrate(db as never, MIGRATION_CONFIG),
    close: () => client.close(),
  };
}

/**
 * The embedded registry and offline database of `dataDir` (`dataDir/pgdata`), with the directory's lock taken first, so
 * a second process gets a clear DataDirBusyError instead of corrupting the files; `command` names the holder in it.
 * Closing the database releases the lock.
 */
export async function openPglite(
  dataDir: string,
  opts: { command?: string } = {},
): Promise<Database & { lock: DataDirLock }> {
  mkdirSync(dataDir, { recursive: true });
  const lock = lockDataDir(dataDir, opts.command ?? "cli");
  try {
    const database = await openPgliteAt(path.join(dataDir, "pgdata"));
    return {
      ...database,
      lock,
      close: async () => {
        try {
          await database.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (e) {
    lock.release();
    throw e;
  }
}
