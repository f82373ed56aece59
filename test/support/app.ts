import { readFile } from "node:fs/promises";
import type { Redis } from "ioredis";
import YAML from "yaml";
import { type App, type AppDeps, createApp } from "../../src/http/app.ts";
import { silentLogger } from "../../src/logger.ts";
import { connectRedis, RedisOnlineStore } from "../../src/online/redis-store.ts";
import { createIntrospector } from "../../src/offline/introspect.ts";
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
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export interface TestContextOptions {
  /** Load the drivers example's tables (default false). */
  exampleData?: boolean;
  /** Apply the drivers example's definitions to this project (implies exampleData). */
  applyExampleTo?: string;
  defaultProject?: string;
  maxEntityRows?: number;
  maxBodyBytes?: number;
}

/** A real app over a fresh database and a fresh Redis prefix. Call `close()` in afterAll. */
export async function createTestContext(opts: TestContextOptions = {}): Promise<TestContext> {
  const db = await createTestDatabase();
  if (opts.exampleData || opts.applyExampleTo) await loadExampleData(db.url);
  const logger = silentLogger();
  const prefix = testPrefix();
  const redis = connectRedis(TEST_REDIS_URL);
  const online = new RedisOnlineStore(redis, prefix);
  const registry = new RegistryService({ db: db.database.db, logger, introspect: createIntrospector(db.database.db) });
  const snapshots = new SnapshotCache({ registry, logger, pollMs: 60_000 });
  const deps: AppDeps = {
    logger,
    db: db.database.db,
    registry,
    snapshots,
    online,
    defaultProject: opts.defaultProject ?? "default",
    limits: { maxBodyBytes: opts.maxBodyBytes ?? 10 * 1024 * 1024, maxEntityRows: opts.maxEntityRows ?? 1000 },
  };
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
    async close() {
      snapshots.stop();
      await clearPrefix(redis, prefix).catch(() => {});
      redis.disconnect();
      await db.drop();
    },
  };
}

export async function exampleDefinitions(): Promise<any> {
  return YAML.parse(await readFile(EXAMPLE_DEFINITIONS, "utf8"));
}
