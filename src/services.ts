import type { Config } from "./config.ts";
import type { Database } from "./db/client.ts";
import type { DataDirLock } from "./embedded/lock.ts";
import type { Logger } from "./logger.ts";
import { createIndexAdvisor, createIntrospector } from "./offline/introspect.ts";
import { type MaterializeDeps, Materializer } from "./offline/materialize.ts";
import type { MaterializationQueue } from "./offline/queue.ts";
import type { OnlineStore } from "./online/store.ts";
import { RegistryService } from "./registry/service.ts";
import { SnapshotCache } from "./registry/snapshot-cache.ts";

/**
 * The stores and services of one process, built here once from the configuration: `larder serve`, `larder worker` and
 * every CLI command get theirs from `openServices`. Modules only one mode needs (the Postgres and Redis drivers, pg-boss;
 * PGlite) are imported when that mode opens, so the other mode never pays for loading them.
 */
export interface Services {
  database: Database;
  online: OnlineStore;
  registry: RegistryService;
  snapshots: SnapshotCache;
  /** The materialisation queue (Postgres mode only; started by whoever uses it). Embedded mode has one process. */
  queue?: MaterializationQueue;
  /** Embedded mode: the data directory and this process's lock on it. */
  embedded?: { dataDir: string; lock: DataDirLock };
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Embedded mode: what holds the data directory (named when another process finds it busy). Default `serve`. */
  command?: string;
  /** Migrate whatever LARDER_MIGRATE says (`larder migrate` migrates always). */
  migrate?: boolean;
  /** Embedded mode: open the online store now rather than on first use (a server answers lookups at once). */
  eagerOnline?: boolean;
}

/** Opens the stores the configuration names (external Postgres + Redis, or embedded) and builds the services. */
export async function openServices(config: Config, logger: Logger, opts: OpenOptions = {}): Promise<Services> {
  let database: Database;
  let online: OnlineStore;
  let queue: MaterializationQueue | undefined;
  let embedded: Services["embedded"];
  if (config.mode.kind === "external") {
    const [{ connectPostgres }, { connectOnlineRedis, RedisOnlineStore }, { MaterializationQueue }] = await Promise.all(
      [import("./db/client.ts"), import("./online/redis-store.ts"), import("./offline/queue.ts")],
    );
    database = connectPostgres(config.mode.databaseUrl, { statementTimeoutMs: config.LARDER_PG_STATEMENT_TIMEOUT_MS });
    const redis = connectOnlineRedis(config.mode.redisUrl, {
      logger,
      readFrom: config.LARDER_REDIS_READ_FROM,
      waitReplicas: config.LARDER_REDIS_WAIT_REPLICAS,
    });
    online = new RedisOnlineStore(redis, config.LARDER_REDIS_PREFIX);
    queue = new MaterializationQueue(config.mode.databaseUrl, logger);
  } else {
    // Embedded: PGlite databases in LARDER_DATA_DIR behind the same interfaces (see src/embedded/stores.ts).
    const { openEmbeddedStores } = await import("./embedded/stores.ts");
    const stores = await openEmbeddedStores(config.mode.dataDir, {
      command: opts.command ?? "serve",
      prefix: config.LARDER_REDIS_PREFIX,
      migrate: false, // below, as for Postgres
      eager: opts.eagerOnline ?? false,
    });
    database = { ...stores.database, close: stores.close };
    online = stores.online;
    embedded = { dataDir: config.mode.dataDir, lock: stores.lock };
  }
  try {
    if (opts.migrate ?? config.LARDER_MIGRATE) await database.migrate();
  } catch (e) {
    await online.close().catch(() => {});
    await database.close().catch(() => {});
    throw e;
  }
  const registry = new RegistryService({
    db: database.db,
    logger,
    introspect: createIntrospector(database.db),
    advise: createIndexAdvisor(database.db),
  });
  const snapshots = new SnapshotCache({ registry, logger, pollMs: config.LARDER_REGISTRY_POLL_MS });
  return {
    database,
    online,
    registry,
    snapshots,
    ...(queue ? { queue } : {}),
    ...(embedded ? { embedded } : {}),
    async close() {
      snapshots.stop();
      await queue?.stop(config.LARDER_SHUTDOWN_TIMEOUT_MS);
      await online.close();
      await database.close();
    },
  };
}

/** The materializer of this process, configured from the environment. */
export function materializerFor(
  config: Config,
  services: Services,
  logger: Logger,
  extra: Pick<MaterializeDeps, "signal" | "track" | "onJobEnd" | "owner" | "queueEverything"> = {},
): Materializer {
  return new Materializer({
    ...extra,
    db: services.database.db,
    online: services.online,
    logger,
    queue: services.queue,
    batchSize: config.LARDER_MATERIALIZE_BATCH_SIZE,
    heartbeatMs: config.LARDER_PARTITION_HEARTBEAT_MS,
    staleAfterMs: config.LARDER_PARTITION_STALE_MS,
  });
}

/** What a process runs besides answering requests: queue work and schedules. */
export interface Background {
  stop(timeoutMs: number): Promise<void>;
}

/**
 * This process's share of materialisation (LARDER_WORKER_CONCURRENCY > 0): partitions from the queue (Postgres mode),
 * the sweep for lost partitions, and feature views' schedules (both modes). With concurrency 0 the queue is only
 * started, to hand work out.
 */
export async function startBackground(
  config: Config,
  services: Services,
  logger: Logger,
  materializer: Materializer,
  track?: (work: Promise<unknown>) => void,
): Promise<Background> {
  const takesWork = config.LARDER_WORKER_CONCURRENCY > 0;
  const [{ PartitionWorker }, { Scheduler }] = await Promise.all([
    import("./offline/worker.ts"),
    import("./offline/schedules.ts"),
  ]);
  let worker: InstanceType<typeof PartitionWorker> | undefined;
  if (services.queue && takesWork) {
    worker = new PartitionWorker({
      materializer,
      queue: services.queue,
      snapshots: services.snapshots,
      logger,
      concurrency: config.LARDER_WORKER_CONCURRENCY,
    });
    await worker.start();
  } else await services.queue?.start();
  const scheduler = takesWork
    ? new Scheduler({
        materializer,
        registry: services.registry,
        snapshots: services.snapshots,
        logger,
        pollMs: config.LARDER_SCHEDULE_POLL_MS,
        ...(track ? { track } : {}),
      })
    : undefined;
  scheduler?.start();
  return {
    async stop(timeoutMs) {
      await scheduler?.stop();
      await worker?.stop(timeoutMs);
    },
  };
}
