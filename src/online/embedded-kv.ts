import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import type { OnlineKv, OnlineKvEntry } from "./kv.ts";

/**
 * The online store's key-value backend as one SQL table, for embedded mode: it lives in the same PGlite database as the
 * registry and the offline tables, so the online values survive a restart with no Redis. The service above it
 * (KvOnlineStore: key layout, encoding, ttl) is the one Redis uses; only "store a string unless the stored one is
 * newer" is implemented here, as one upsert whose WHERE compares the times, so it is atomic per key like the Lua script.
 *
 * Plain SQL, nothing PGlite-specific: it runs on Postgres too, which is how its tests compare it with Redis.
 * The table is created at open (not by a migration): a Postgres + Redis deployment never needs it.
 */
export const EMBEDDED_KV_TABLE = "larder.online_kv";

export class SqlKv implements OnlineKv {
  private constructor(private readonly db: Db) {}

  /** Creates the table when missing and drops entries whose expiry passed (Redis would have dropped them). */
  static async open(db: Db, nowMs = Date.now()): Promise<SqlKv> {
    await db.execute(sql`CREATE SCHEMA IF NOT EXISTS larder`);
    await db.execute(
      sql.raw(`CREATE TABLE IF NOT EXISTS ${EMBEDDED_KV_TABLE} (
        key          text PRIMARY KEY,
        value        text   NOT NULL,
        event_ts     bigint NOT NULL,
        created_ts   bigint NOT NULL,
        layout       text   NOT NULL,
        expire_at_ms bigint
      )`),
    );
    await db.execute(sql`DELETE FROM larder.online_kv WHERE expire_at_ms <= ${nowMs}`);
    return new SqlKv(db);
  }

  async getMany(keys: string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    const unique = [...new Set(keys)];
    const res = (await this.db.execute(
      sql`SELECT key, value FROM larder.online_kv
          WHERE key = ANY(${sql.param(unique)}::text[])
            AND (expire_at_ms IS NULL OR expire_at_ms > ${Date.now()})`,
    )) as unknown as { rows: { key: string; value: string }[] };
    const found = new Map(res.rows.map((r) => [r.key, r.value]));
    return keys.map((k) => found.get(k) ?? null);
  }

  async putIfNewer(entries: OnlineKvEntry[]): Promise<boolean[]> {
    const out = new Array<boolean>(entries.length).fill(false);
    if (entries.length === 0) return out;
    // One upsert cannot touch a row twice, so a key repeated in the call goes into a later round: rounds run in order,
    // which is the same as applying the entries one by one (different keys do not interact).
    const rounds: number[][] = [];
    const seen = new Map<string, number>();
    entries.forEach((e, i) => {
      const r = seen.get(e.key) ?? 0;
      seen.set(e.key, r + 1);
      const round = rounds[r] ?? [];
      rounds[r] = round;
      round.push(i);
    });
    const nowMs = Date.now();
    for (const round of rounds) {
      const batch = round.map((i) => entries[i]!);
      const res = (await this.db.execute(sql`
          INSERT INTO larder.online_kv AS t (key, value, event_ts, created_ts, layout, expire_at_ms)
          SELECT * FROM unnest(
            ${sql.param(batch.map((e) => e.key))}::text[],
            ${sql.param(batch.map((e) => e.value))}::text[],
            ${sql.param(batch.map((e) => String(e.eventTs)))}::bigint[],
            ${sql.param(batch.map((e) => String(e.createdTs)))}::bigint[],
            ${sql.param(batch.map((e) => e.layout))}::text[],
            ${sql.param(batch.map((e) => (e.expireAtMs === null ? null : String(Math.ceil(e.expireAtMs)))))}::bigint[])
          ON CONFLICT (key) DO UPDATE SET
            value = excluded.value, event_ts = excluded.event_ts, created_ts = excluded.created_ts,
            layout = excluded.layout, expire_at_ms = excluded.expire_at_ms
          WHERE t.layout <> excluded.layout
             OR (t.event_ts, t.created_ts) <= (excluded.event_ts, excluded.created_ts)
             OR t.expire_at_ms <= ${nowMs}
          RETURNING t.key`)) as unknown as { rows: { key: string }[] };
      const written = new Set(res.rows.map((r) => r.key));
      for (const i of round) out[i] = written.has(entries[i]!.key);
    }
    return out;
  }

  async ping(): Promise<void> {
    await this.db.execute(sql`SELECT 1`);
  }

  /** The database belongs to the caller (it also holds the registry): closed there. */
  async close(): Promise<void> {}
}
