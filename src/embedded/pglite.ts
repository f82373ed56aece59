import { type Database, type Db, MIGRATION_CONFIG, type Schema } from "../db/client.ts";
import * as schema from "../db/schema.ts";

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
