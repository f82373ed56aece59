import { Cluster, Redis } from "ioredis";
import type { Logger } from "../logger.ts";
import type { OnlineKv } from "./kv.ts";
import { type NodeStat, NodeStats } from "./node-stats.ts";
import { classifyRedisFailures, isUnreachable, onFailure, watchRedis } from "./redis-errors.ts";
import { ClusterKv, RedisKv } from "./redis-kv.ts";
import { hostPort, parseRedisUrl, type RedisMode, type RedisTarget } from "./redis-url.ts";
import { SentinelWatchdog } from "./sentinel-watchdog.ts";
import { KvOnlineStore } from "./service.ts";
import type { OnlineStoreInfo } from "./store.ts";

export interface OnlineRedisOptions {
  /** LARDER_REDIS_READ_FROM: lookups read masters (default) or their replicas. */
  readFrom?: "master" | "replica";
  /** LARDER_REDIS_WAIT_REPLICAS. */
  waitReplicas?: number;
  /** Longest a command may take before it fails (and the request answers 503); with Sentinel, a sentinel's too. */
  commandTimeoutMs?: number;
  logger?: Logger;
}

/** Options every connection to a Redis node shares: fail fast while disconnected, never queue, never hang. */
function nodeOptions(opts: OnlineRedisOptions) {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    connectTimeout: 2000,
  };
}

/** Keep retrying forever, but never more slowly than once a second, so recovery is quick. */
const retryStrategy = (times: number) => Math.min(times * 100, 1000);

/** A client for one Redis (what tests and tools use directly). */
export function connectRedis(url: string, opts: OnlineRedisOptions = {}): Redis {
  const redis = new Redis(url, { ...nodeOptions(opts), lazyConnect: false, retryStrategy });
  watchRedis(redis, "Redis", () => `${redis.options.host}:${redis.options.port}`, opts.logger);
  return redis;
}

/** The online store's connection: the key-value backend over it, and what /health and the metrics say about it. */
export interface OnlineRedis {
  mode: RedisMode;
  kv: OnlineKv;
  /** The client writes go through (a Cluster in cluster mode). Close it by `kv.close()`, which stops its watchdog too. */
  client: Redis | Cluster;
  /** The masters it writes to; with Sentinel, the sentinels after them. */
  nodes(): string[];
  stats: NodeStats;
}

const remote = (r: Redis) =>
  r.stream?.remoteAddress ? hostPort({ host: r.stream.remoteAddress, port: r.stream.remotePort ?? 0 }) : "unconnected";

/** Connects to what REDIS_URL names: one Redis, a Redis Cluster, or the master a set of sentinels watch. */
export function connectOnlineRedis(target: RedisTarget | string, opts: OnlineRedisOptions = {}): OnlineRedis {
  const t = typeof target === "string" ? parseRedisUrl(target) : target;
  const stats = new NodeStats();
  const waitReplicas = opts.waitReplicas ?? 0;
  if (t.mode === "single") {
    const redis = connectRedis(t.url, opts);
    const node = hostPort(t.node);
    return {
      mode: "single",
      client: redis,
      kv: new RedisKv(redis, { waitReplicas, stats, nodeOf: () => node }),
      nodes: () => [node],
      stats,
    };
  }
  if (t.mode === "cluster") {
    const cluster = new Cluster(t.nodes, {
      scaleReads: opts.readFrom === "replica" ? "slave" : "master",
      enableOfflineQueue: false,
      // while no seed answers: keep trying, at most a second apart
      clusterRetryStrategy: retryStrategy,
      slotsRefreshTimeout: 1000,
      redisOptions: { ...nodeOptions(opts), username: t.username, password: t.password },
    });
    watchRedis(cluster, "Redis Cluster", () => t.nodes.map(hostPort).join(", "), opts.logger);
    const kv = new ClusterKv(cluster, { waitReplicas, stats, deadlineMs: opts.commandTimeoutMs ?? 2000 });
    return {
      mode: "cluster",
      client: cluster,
      kv,
      nodes: () => cluster.nodes("master").map((n) => hostPort({ host: n.options.host!, port: n.options.port! })),
      stats,
    };
  }
  const sentinelOptions = (role: "master" | "slave") => ({
    ...nodeOptions(opts),
    sentinels: t.sentinels,
    name: t.name,
    role,
    username: t.username,
    password: t.password,
    retryStrategy,
    sentinelRetryStrategy: retryStrategy,
    // a sentinel that accepts but never answers (paused, cut off) would hold a reconnection for ever without it
    sentinelCommandTimeout: opts.commandTimeoutMs ?? 2000,
    // hear of a failover from the sentinels at once rather than at the next failed command
    failoverDetector: true,
    // the detector's sentinel connections: back within a second, not ioredis' default minute, after a sentinel restart
    sentinelReconnectStrategy: retryStrategy,
    // a master demoted to replica refuses writes: reconnect, and Sentinel names the new master
    reconnectOnError: (e: Error) => (/^READONLY/.test(e.message) ? 1 : false) as 1 | false,
  });
  const master = new Redis(sentinelOptions("master"));
  const sentinels = t.sentinels.map(hostPort);
  watchRedis(master, "Redis via the sentinels", () => sentinels.join(", "), opts.logger);
  let replica: Redis | undefined;
  if (opts.readFrom === "replica") {
    replica = new Redis(sentinelOptions("slave"));
    watchRedis(replica, "Redis replica via the sentinels", () => sentinels.join(", "), opts.logger);
  }
  // what ioredis does not recover from by itself (src/online/sentinel-watchdog.ts)
  const watchdog = new SentinelWatchdog({ sentinels: t.sentinels, name: t.name, master, replica, logger: opts.logger });
  return {
    mode: "sentinel",
    client: master,
    kv: watched(new RedisKv(master, { waitReplicas, stats, replica, nodeOf: remote }), watchdog),
    nodes: () => [remote(master), ...sentinels],
    stats,
  };
}

/** The backend, telling the watchdog of every command that failed for want of a server, and stopping it on close. */
function watched(kv: OnlineKv, watchdog: SentinelWatchdog): OnlineKv {
  const fail = (e: unknown): never => {
    if (isUnreachable(e)) watchdog.suspect();
    throw e;
  };
  return onFailure(kv, fail, () => watchdog.stop());
}

/** The online store over Redis (key layout and value encoding: docs/redis-layout.md, src/online/layout.ts). */
export class RedisOnlineStore extends KvOnlineStore {
  readonly connection: OnlineRedis;

  constructor(redis: Redis | OnlineRedis, prefix: string) {
    const connection: OnlineRedis =
      redis instanceof Redis
        ? {
            mode: "single",
            client: redis,
            kv: new RedisKv(redis),
            nodes: () => [`${redis.options.host}:${redis.options.port}`],
            stats: new NodeStats(),
          }
        : redis;
    super(classifyRedisFailures(connection.kv, connection.client), prefix);
    this.connection = connection;
  }

  describe(): OnlineStoreInfo {
    return { mode: this.connection.mode, nodes: this.connection.nodes() };
  }

  nodeStats(): NodeStat[] {
    return this.connection.stats.snapshot();
  }
}
