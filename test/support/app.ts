import { readFile } from "node:fs/promises";
import type { Redis } from "ioredis";
import YAML from "yaml";
import { ApiKeyStore, KeyCache } from "../../src/auth/keys.ts";
import { type App, type AppDeps, createApp } from "../../src/http/app.ts";
import { createMetrics } from "../../src/http/metrics.ts";
import { type Logger, silentLogger } from "../../src/logger.ts";
import { createIndexAdvisor, createIntrospector } from "../../src/offline/introspect.ts";
import {
  connectOnlineRedis,
  connectRedis,
  type OnlineRedisOptions,
  RedisOnlineStore,
} from "../../src/online/redis-store.ts";
import { RegistryService } from "../../src/registry/service.ts";
import { SnapshotCache } from "../../src/registry/snapshot-cache.ts";
import { createTestDatabase, EXAMPLE_DEFINITIONS, loadExampleData, type TestDatabase } from "./db.ts";
import { clearPrefix, TEST_REDIS_URL, testPrefix } from "./redis.ts";

export interface TestContext {
  app: App;
  deps: AppDeps;
  db: TestDatabase;
  redis: Redis;
  prefix: string;
  online: RedisOnlineStore;
  /** JSON request helper: `call("POST", "/path", body)` → { status, body } */
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
  /** With `auth: true`: the key table and the server's in-memory cache of it. */
  keys?: { store: ApiKeyStore; cache: KeyCache };
}

export interface TestContextOptions {
  /** Load the drivers example's tables (default false). */
  exampleData?: boolean;
  /** Apply the drivers example's definitions to this project (implies exampleData). */
  applyExampleTo?: string;
  defaultProject?: string;
  maxEntityRows?: number;
  maxBodyBytes?: number;
  /** Check API keys (default false, so tests need no keys); the context then has `keys` to make some. */
  auth?: boolean;
  /** Instead of the silent logger (e.g. to look at what is logged). */
  logger?: Logger;
  /** The online store on this REDIS_URL (a cluster, Sentinel…) rather than the test Redis; `redis` stays the latter. */
  redisUrl?: string;
  redisOptions?: OnlineRedisOptions;
}

/** A real app over a fresh database and a fresh Redis prefix. Call `close()` in afterAll. */
export async function createTestContext(opts: TestContextOptions = {}): Promise<TestContext> {
  const db = await createTestDatabase();
  if (opts.exampleData || opts.applyExampleTo) await loadExampleData(db.url);
  const logger = opts.logger ?? silentLogger();
  const prefix = testPrefix();
  const redis = connectRedis(TEST_REDIS_URL);
  const online = new RedisOnlineStore(
    opts.redisUrl ? connectOnlineRedis(opts.redisUrl, opts.redisOptions) : redis,
    prefix,
  );
  const registry = new RegistryService({
    db: db.database.db,
    logger,
    introspect: createIntrospector(db.database.db),
    advise: createIndexAdvisor(db.database.db),
  });
  const snapshots = new SnapshotCache({ registry, logger, pollMs: 60_000 });
  const deps: AppDeps = {
    logger,
    db: db.database.db,
    registry,
    snapshots,
    online,
    defaultProject: opts.defaultProject ?? "default",
    limits: { maxBodyBytes: opts.maxBodyBytes ?? 10 * 1024 * 1024, maxEntityRows: opts.maxEntityRows ?? 1000 },
    metrics: createMetrics({ snapshotAgeSeconds: () => snapshots.ageSeconds() }),
  };
  let keys: TestContext["keys"];
  if (opts.auth) {
    const pepper = "test-pepper-0123456789";
    const store = new ApiKeyStore({ db: db.database.db, pepper });
    keys = { store, cache: new KeyCache({ store, pepper, pollMs: 200, missRefreshMs: 0 }) };
    deps.auth = keys.cache;
  }
  const app = createApp(deps);
  if (opts.applyExampleTo) {
    await registry.apply(opts.applyExampleTo, await exampleDefinitions());
    await snapshots.reload(opts.applyExampleTo);
  }
  const call: TestContext["call"] = async (method, path, body, headers = {}) => {
    const res = await app.request(path, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, body: parsed };
  };
  return {
    app,
    deps,
    db,
    redis,
    prefix,
    online,
    call,
    keys,
    async close() {
      keys?.cache.stop();
      snapshots.stop();
      await clearPrefix(redis, prefix).catch(() => {});
      redis.disconnect();
      if (opts.redisUrl) await online.close();
      await db.drop();
    },
  };
}

export async function exampleDefinitions(): Promise<any> {
  return YAML.parse(await readFile(EXAMPLE_DEFINITIONS, "utf8"));
}
