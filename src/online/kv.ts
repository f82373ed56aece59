/**
 * The key-value backend the online store sits on. The online store (src/online/service.ts) owns the key layout and
 * the value encoding (src/online/layout.ts) and is written once; a backend only stores opaque strings and enforces
 * "never older over newer". Implemented over Redis (src/online/redis-kv.ts) and embedded (PGlite).
 *
 * Contract for implementations:
 * - `getMany(keys)` answers, in one round trip where the backend allows it, one entry per key, in the order given:
 *   the exact string stored by `putIfNewer`, or null when absent or expired. Keys may repeat.
 * - `putIfNewer(entries)` stores each entry's `value` under its `key` unless the stored entry for that key has the same
 *   `layout` and is newer: stored `(eventTs, createdTs)` greater than the entry's, compared lexicographically
 *   (event time first, created time breaks ties; equal pairs are overwritten, so a re-run is idempotent).
 *   A different `layout` (the view's schema changed) is always overwritten. The compare-and-set of each key is
 *   atomic with respect to concurrent writers (Redis: one Lua script; SQL: one upsert with a WHERE on the times).
 *   Entries are applied in order, so a key repeated in one call ends with the newest of them.
 *   Answers one boolean per entry: true when written, false when skipped.
 * - `expireAtMs`: epoch milliseconds after which the entry may be dropped (null: never). Backends without expiry
 *   may keep it longer; readers enforce ttl themselves, expiry only bounds memory.
 * - The value string always begins with `<eventTs>\x1f<createdTs>\x1f<layout>\x1f` (see layout.ts): a backend that
 *   cannot keep the times beside the value (Redis) reads them from there.
 */
export interface OnlineKvEntry {
  key: string;
  value: string;
  /** Epoch microseconds. */
  eventTs: number;
  /** Epoch microseconds; 0 when the source has no created time. */
  createdTs: number;
  /** The view's layout id (CompiledView.layoutId) the value was encoded with. */
  layout: string;
  /** Epoch milliseconds; null: never expires. */
  expireAtMs: number | null;
}

export interface OnlineKv {
  getMany(keys: string[]): Promise<(string | null)[]>;
  /**
   * The same as getMany, as the stored UTF-8 bytes: a backend that reads bytes (Redis) spares decoding them.
   * `buckets[i]`, when given, is the slot bucket of `keys[i]` (slot-buckets.ts; NO_BUCKET: not known), which the caller
   * chose when it built the key: a Redis Cluster backend groups the keys by it instead of hashing each key again; the
   * others ignore it.
   */
  getManyBytes?(keys: string[], buckets?: Uint8Array): Promise<(Buffer | null)[]>;
  putIfNewer(entries: OnlineKvEntry[]): Promise<boolean[]>;
  /** Resolves when the backend answers; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
