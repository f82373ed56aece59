import { Redis } from "ioredis";
import { RedisKv } from "./redis-kv.ts";
import { KvOnlineStore } from "./service.ts";

export function connectRedis(url: string, commandTimeoutMs = 2000): Redis {
  return new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    // keep retrying forever, but never more slowly than once a second, so recovery is quick
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
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
