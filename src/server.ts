import { serve } from "@hono/node-server";
import type { Config } from "./config.ts";
import { connectPostgres, type Database, openPglite } from "./db/client.ts";
import { type App, createApp } from "./http/app.ts";
import type { Logger } from "./logger.ts";
import { connectRedis, RedisOnlineStore } from "./online/redis-store.ts";
import type { OnlineStore } from "./online/store.ts";
import { createIntrospector } from "./offline/introspect.ts";
import { RegistryService } from "./registry/service.ts";
import { SnapshotCache } from "./registry/snapshot-cache.ts";

export interface Services {
  database: Database;
  online: OnlineStore;
  registry: RegistryService;
  snapshots: SnapshotCache;
  close(): Promise<void>;
}

/** Opens the stores the configuration names (external Postgres + Redis, or embedded) and builds the services. */
export async function openServices(config: Config, logger: Logger): Promise<Services> {
  let database: Database;
  let online: OnlineStore;
  if (config.mode.kind === "external") {
    database = connectPostgres(config.mode.databaseUrl, { statementTimeoutMs: 0 });
    online = new RedisOnlineStore(connectRedis(config.mode.redisUrl), config.LARDER_REDIS_PREFIX);
  } else {
    throw new Error("embedded mode is not available yet: set DATABASE_URL and REDIS_URL");
  }
  if (config.LARDER_MIGRATE) await database.migrate();
  const registry = new RegistryService({ db: database.db, logger, introspect: createIntrospector(database.db) });
  const snapshots = new SnapshotCache({ registry, logger, pollMs: config.LARDER_REGISTRY_POLL_MS });
  return {
    database,
    online,
    registry,
    snapshots,
    async close() {
      snapshots.stop();
      await online.close();
      await database.close();
    },
  };
}

export function buildApp(config: Config, services: Services, logger: Logger): App {
  return createApp({
    logger,
    db: services.database.db,
    registry: services.registry,
    snapshots: services.snapshots,
    online: services.online,
    defaultProject: config.LARDER_PROJECT,
    limits: { maxBodyBytes: config.LARDER_MAX_BODY_BYTES, maxEntityRows: config.LARDER_MAX_ENTITY_ROWS },
  });
}

/** Starts the HTTP server; resolves with a function that stops it gracefully. */
export async function startServer(config: Config, logger: Logger): Promise<{ stop: () => Promise<void>; port: number }> {
  const started = performance.now();
  logger.info(
    { mode: config.mode.kind, project: config.LARDER_PROJECT },
    config.mode.kind === "embedded"
      ? "larder starting in EMBEDDED mode (no DATABASE_URL/REDIS_URL): for trying out, not for production"
      : "larder starting with Postgres and Redis",
  );
  const services = await openServices(config, logger);
  try {
    await services.snapshots.get(config.LARDER_PROJECT);
  } catch (e) {
    logger.warn({ err: (e as Error).message }, "could not load the registry yet; will retry");
  }
  services.snapshots.start();
  const app = buildApp(config, services, logger);
  const server = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.PORT;
  logger.info({ port, host: config.HOST, ms: Math.round(performance.now() - started) }, "larder listening");
  return {
    port,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.close();
    },
  };
}
