import { Redis } from "ioredis";
import type { Logger } from "../logger.ts";
import { RedisKv } from "./redis-kv.ts";
import { KvOnlineStore } from "./service.ts";

const ERROR_LOG_MS = 10_000;

/**
 * A client for the online store. ioredis reconnects by itself; its connection errors are logged (once per message per
 * ERROR_LOG_MS, not at every retry) rather than left to its "Unhandled error event" line on stderr.
 */
export function connectRedis(url: string, opts: { commandTimeoutMs?: number; logger?: Logger } = {}): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    connectTimeout: 2000,
    // keep retrying forever, but never more slowly than once a second, so recovery is quick
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  const loggedAt = new Map<string, number>();
  redis.on("error", (e: Error) => {
    const now = Date.now();
    if (now - (loggedAt.get(e.message) ?? 0) < ERROR_LOG_MS) return;
    if (loggedAt.size >= 100) loggedAt.clear();
    loggedAt.set(e.message, now);
    opts.logger?.warn({ err: e.message }, "online store (Redis) connection error; reconnecting");
  });
  return redis;
}

/** The online store over Redis (key layout and value encoding: docs/redis-layout.md, src/online/layout.ts). */
export class RedisOnlineStore extends KvOnlineStore {
  constructor(
    readonly redis: Redis,
    prefix: string,
  ) {
    super(new RedisKv(redis), prefix);
  }
}
