import { mkdirSync } from "node:fs";
import path from "node:path";
import { type Database, openPgliteAt } from "../db/client.ts";
import { SqlKv } from "../online/embedded-kv.ts";
import { KvOnlineStore } from "../online/service.ts";
import { lockDataDir } from "./lock.ts";

/**
 * Embedded mode's stores, all in one data directory:
 *   <dataDir>/larder.lock  who holds the directory (see lock.ts)
 *   <dataDir>/pgdata/      PGlite: the registry and the offline store, migrated like any Postgres
 *   <dataDir>/online/      PGlite: the online store's one table (SqlKv), standing where Redis stands in production
 *
 * Why the online values are in a database of their own: PGlite is a single connection, and a statement queues behind
 * any open transaction. Materialisation holds a transaction open on the offline database (a cursor over the source)
 * while it writes each batch online; with both in one PGlite that write would wait for that very transaction forever.
 * Kept apart, as Postgres and Redis are in production, lookups also stay quick while a job or a training-set query runs.
 */
export interface EmbeddedStores {
  database: Database;
  online: KvOnlineStore;
  /** The online store's own database (for tests and tools). */
  onlineDatabase: Database;
  close(): Promise<void>;
}

export async function openEmbeddedStores(
  dataDir: string,
  opts: { command: string; prefix: string; migrate: boolean },
): Promise<EmbeddedStores> {
  mkdirSync(dataDir, { recursive: true });
  const lock = lockDataDir(dataDir, opts.command);
  let opened: Database[] = [];
  try {
    // Both databases start side by side: on first use each runs initdb, which is most of a first start's time.
    const results = await Promise.allSettled([
      openPgliteAt(path.join(dataDir, "pgdata")),
      openPgliteAt(path.join(dataDir, "online")),
    ]);
    opened = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    for (const r of results) if (r.status === "rejected") throw r.reason;
    const [database, onlineDatabase] = opened as [Database, Database];
    if (opts.migrate) await database.migrate();
    const online = new KvOnlineStore(await SqlKv.open(onlineDatabase.db), opts.prefix);
    database.lock = lock;
    return {
      database,
      online,
      onlineDatabase,
      async close() {
        try {
          await online.close();
          await Promise.allSettled([onlineDatabase.close(), database.close()]);
        } finally {
          lock.release();
        }
      },
    };
  } catch (e) {
    await Promise.allSettled(opened.map((d) => d.close()));
    lock.release();
    throw e;
  }
}
