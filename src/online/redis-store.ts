import { Redis } from "ioredis";
import type { CompiledView } from "../registry/snapshot.ts";
import type { OnlineStore, OnlineWriteRow, WriteResult } from "./store.ts";

export interface RedisStoreOptions {
  url: string;
  prefix: string;
  /** Milliseconds any command may take before it fails (the server answers 503 rather than hang). */
  commandTimeoutMs?: number;
}

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

/** The online store over Redis. (Key layout and value encoding: see README "Redis layout".) */
export class RedisOnlineStore implements OnlineStore {
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {}

  async write(_view: CompiledView, _rows: OnlineWriteRow[]): Promise<WriteResult> {
    throw new Error("RedisOnlineStore.write: being written (online issue)");
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
