import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { and, desc, eq, inArray, isNull } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { DomainError, invalid, notFound } from "../errors.ts";
import { checkProjectName } from "../registry/definitions.ts";
import { formatTimestamp } from "../values.ts";
import { apiKeys } from "./schema.ts";

export const SCOPES = ["read", "write", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** Each scope includes the ones before it: a write key may also read, an admin key may do anything. */
const RANK: Record<Scope, number> = { read: 0, write: 1, admin: 2 };
export const scopeAllows = (have: Scope, need: Scope) => RANK[have] >= RANK[need];

/** Used when LARDER_API_KEY_PEPPER is unset. Secrets carry 256 random bits, so the pepper is defence in depth only. */
export const DEFAULT_PEPPER = "larder-api-key-v1";
const HASH_PREFIX = "hmac-sha256:";
const KEY_RE = /^lk_([0-9a-f]{16})_([0-9a-f]{64})$/;

export interface ApiKeyInfo {
  id: string;
  scope: Scope;
  project: string | null;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface CreatedKey {
  /** The whole key, `lk_<id>_<secret>`: shown once and never stored. */
  key: string;
  info: ApiKeyInfo;
}

/** Splits a presented key into its lookup id and its secret; null when it is not shaped like one of ours. */
export function parseKey(token: string): { id: string; secret: string } | null {
  const m = KEY_RE.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

export function hashSecret(secret: string, pepper: string): string {
  return HASH_PREFIX + createHmac("sha256", pepper).update(secret).digest("hex");
}

/** Constant-time comparison of a presented secret against a stored hash. */
export function secretMatches(secret: string, storedHash: string, pepper: string): boolean {
  const a = Buffer.from(hashSecret(secret, pepper));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}

type Row = typeof apiKeys.$inferSelect;
const iso = (d: Date | null) => (d ? formatTimestamp(d) : null);
const toInfo = (r: Row): ApiKeyInfo => ({
  id: r.id,
  scope: r.scope as Scope,
  project: r.project,
  name: r.name,
  created_at: formatTimestamp(r.createdAt),
  revoked_at: iso(r.revokedAt),
  last_used_at: iso(r.lastUsedAt),
});

/** The api_keys table: only ever holds the HMAC of a key's secret. */
export class ApiKeyStore {
  constructor(private readonly deps: { db: Db; pepper: string }) {}

  async create(opts: { scope: string; project?: string | null; name?: string | null }): Promise<CreatedKey> {
    if (!(SCOPES as readonly string[]).includes(opts.scope))
      throw invalid(`scope must be one of ${SCOPES.join(", ")}, not ${JSON.stringify(opts.scope)}`);
    if (opts.project != null) checkProjectName(opts.project);
    if (opts.name != null && opts.name.length > 200) throw invalid("name must be at most 200 characters");
    const id = randomBytes(8).toString("hex");
    const secret = randomBytes(32).toString("hex");
    const [row] = await this.deps.db
      .insert(apiKeys)
      .values({
        id,
        secretHash: hashSecret(secret, this.deps.pepper),
        scope: opts.scope,
        project: opts.project ?? null,
        name: opts.name ?? null,
      })
      .returning();
    return { key: `lk_${id}_${secret}`, info: toInfo(row!) };
  }

  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyInfo[]> {
    const q = this.deps.db.select().from(apiKeys);
    const rows = await (opts.includeRevoked ? q : q.where(isNull(apiKeys.revokedAt))).orderBy(desc(apiKeys.createdAt));
    return rows.map(toInfo);
  }

  /** Marks a key revoked (kept for the record). Accepts the id or the whole key. */
  async revoke(idOrKey: string): Promise<ApiKeyInfo> {
    const id = parseKey(idOrKey)?.id ?? idOrKey.replace(/^lk_/, "");
    const [row] = await this.deps.db
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning();
    if (row) return toInfo(row);
    const [existing] = await this.deps.db.select().from(apiKeys).where(eq(apiKeys.id, id));
    if (existing) return toInfo(existing);
    throw notFound(`no API key with id ${JSON.stringify(id)}`);
  }

  /** Every key, with its hash: what the verifier caches. */
  async loadAll(): Promise<Row[]> {
    return this.deps.db.select().from(apiKeys);
  }

  async touch(ids: string[], at: Date): Promise<void> {
    if (ids.length) await this.deps.db.update(apiKeys).set({ lastUsedAt: at }).where(inArray(apiKeys.id, ids));
  }
}

/** Who a request's key says it is. */
export interface Principal {
  keyId: string;
  scope: Scope;
  project: string | null;
}

export interface KeyVerifier {
  /** The key's principal; null for an unknown, wrong or revoked key. Throws `unavailable` when it cannot tell. */
  verify(token: string): Promise<Principal | null>;
}

export interface KeyCacheOptions {
  store: ApiKeyStore;
  pepper: string;
  /** How often the whole table is re-read, so keys revoked by another process stop working. */
  pollMs: number;
  /** Shortest interval between two re-reads caused by an unknown key id (a new key, or someone guessing). */
  missRefreshMs?: number;
  logger?: { warn(obj: object, msg: string): void };
}

interface CachedKey {
  hash: string;
  principal: Principal;
  revoked: boolean;
}

/**
 * Every key in memory, so verifying one costs no database round trip. The table is re-read every `pollMs` (revocations
 * by the CLI take effect within that), and when an unknown id shows up: at once, or once `missRefreshMs` has passed since
 * the last read, the request waiting for it (so a key made a moment ago works at once, and guessing costs the database
 * at most one read per `missRefreshMs`). When the database is down the keys already known keep working.
 */
export class KeyCache implements KeyVerifier {
  private keys = new Map<string, CachedKey>();
  private loaded = false;
  private refreshing: Promise<void> | undefined;
  private delayedRefresh: Promise<void> | undefined;
  private lastRefreshAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private used = new Set<string>();
  /**
   * Keys verified since the table was last read, by the whole presented key: an HMAC per request was a measurable share
   * of a small lookup. Only keys that verified are held (one per key, so as many as the table's); each read empties it,
   * so a revocation takes effect as before. A miss costs the full check, and a lookup compares the presented key with a
   * held one only when their hashes are equal, which a guess cannot arrange: no prefix of a secret can be learnt from
   * timing. The keys in use are held in memory for as long as that (a heap dump of the server would show them).
   */
  private verified = new Map<string, Principal>();

  constructor(private readonly opts: KeyCacheOptions) {}

  async verify(token: string): Promise<Principal | null> {
    const known = this.verified.get(token);
    if (known) {
      this.used.add(known.keyId);
      return known;
    }
    const parsed = parseKey(token);
    if (!parsed) return null;
    let entry = this.keys.get(parsed.id);
    if (!entry) {
      const missMs = this.opts.missRefreshMs ?? 1000;
      const sinceLast = Date.now() - this.lastRefreshAt;
      try {
        // Within missMs of the last read, wait for the next one rather than refuse: the last read may predate the key.
        if (!this.loaded || sinceLast >= missMs) await this.refresh();
        else await this.refreshIn(missMs - sinceLast);
      } catch (e) {
        throw new DomainError(
          "unavailable",
          `cannot verify the API key: the database is unavailable (${(e as Error).message})`,
        );
      }
      entry = this.keys.get(parsed.id);
      if (!entry) return null;
    }
    if (entry.revoked || !secretMatches(parsed.secret, entry.hash, this.opts.pepper)) return null;
    this.used.add(parsed.id);
    this.verified.set(token, entry.principal);
    return entry.principal;
  }

  /** A re-read once `ms` have passed; callers meanwhile share it. */
  private refreshIn(ms: number): Promise<void> {
    this.delayedRefresh ??= new Promise<void>((resolve) => setTimeout(resolve, ms))
      .then(() => this.refresh())
      .finally(() => {
        this.delayedRefresh = undefined;
      });
    return this.delayedRefresh;
  }

  /** Re-reads the table (one query; concurrent callers share it). */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        const rows = await this.opts.store.loadAll();
        const next = new Map<string, CachedKey>();
        for (const r of rows)
          next.set(r.id, {
            hash: r.secretHash,
            revoked: r.revokedAt !== null,
            principal: { keyId: r.id, scope: r.scope as Scope, project: r.project },
          });
        this.keys = next;
        this.verified = new Map();
        this.loaded = true;
      } finally {
        this.lastRefreshAt = Date.now();
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** One poll: records which keys were used since the last one, then re-reads the table. */
  async poll(): Promise<void> {
    const used = [...this.used];
    this.used.clear();
    try {
      await this.opts.store.touch(used, new Date());
      await this.refresh();
    } catch (e) {
      for (const id of used) this.used.add(id);
      this.opts.logger?.warn({ err: (e as Error).message }, "API key refresh failed; known keys keep working");
    }
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
