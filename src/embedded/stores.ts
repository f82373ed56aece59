import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Database } from "../db/client.ts";
import { SqlKv } from "../online/embedded-kv.ts";
import type { OnlineKv, OnlineKvEntry } from "../online/kv.ts";
import { KvOnlineStore } from "../online/service.ts";
import { type DataDirLock, lockDataDir } from "./lock.ts";
import { openPgliteAt } from "./pglite.ts";
import { startFromTemplate } from "./template.ts";

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
 * A new data directory starts as a copy of a template made once per machine (template.ts), not with two initdb runs.
 * The online database opens on first use (`eager` opens it at once, beside the other): most CLI commands never touch
 * it, and each PGlite costs about half a second to open.
 */
export interface EmbeddedStores {
  database: Database;
  online: KvOnlineStore;
  /** The lock this process holds on the directory. */
  lock: DataDirLock;
  close(): Promise<void>;
}

export async function openEmbeddedStores(
  dataDir: string,
  opts: { command: string; prefix: string; migrate: boolean; eager?: boolean },
): Promise<EmbeddedStores> {
  mkdirSync(dataDir, { recursive: true });
  const lock = lockDataDir(dataDir, opts.command);
  const kv = new LazyKv(path.join(dataDir, "online"));
  let database: Database | undefined;
  try {
    // Side by side: opening is mostly CPU spent in WebAssembly, and the machine has more than one core.
    const pgdata = path.join(dataDir, "pgdata");
    const [db] = await Promise.all([
      startFromTemplate(pgdata, "pgdata").then(() => openPgliteAt(pgdata)),
      opts.eager ? kv.open() : undefined,
    ]);
    database = db;
    if (opts.migrate) await db.migrate();
    const online = new KvOnlineStore(kv, opts.prefix);
    return {
      database: db,
      online,
      lock,
      async close() {
        try {
          await Promise.allSettled([kv.close(), db.close()]);
        } finally {
          lock.release();
        }
      },
    };
  } catch (e) {
    await Promise.allSettled([kv.close(), database?.close()]);
    lock.release();
    throw e;
  }
}

/** SqlKv on the online database, opened by the first call that needs it. */
class LazyKv implements OnlineKv {
  private opening: Promise<{ database: Database; kv: SqlKv }> | undefined;

  constructor(private readonly dir: string) {}

  open(): Promise<{ database: Database; kv: SqlKv }> {
    this.opening ??= startFromTemplate(this.dir, "online")
      .then(() => openPgliteAt(this.dir))
      .then(async (database) => {
        try {
          return { database, kv: await SqlKv.open(database.db) };
        } catch (e) {
          await database.close().catch(() => {});
          throw e;
        }
      });
    return this.opening;
  }

  async getMany(keys: string[]): Promise<(string | null)[]> {
    return (await this.open()).kv.getMany(keys);
  }

  async putIfNewer(entries: OnlineKvEntry[]): Promise<boolean[]> {
    return (await this.open()).kv.putIfNewer(entries);
  }

  async ping(): Promise<void> {
    await (await this.open()).kv.ping();
  }

  async close(): Promise<void> {
    if (!this.opening) return;
    const { database, kv } = await this.opening;
    await kv.close();
    await database.close();
  }
}
