import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

export const TEST_REDIS_URL = process.env.LARDER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A key prefix of its own for one test file, so files never see each other's keys. */
export function testPrefix(): string {
  return `larder_test:${randomBytes(5).toString("hex")}:`;
}

/** Deletes every key under a prefix. */
/** Deletes every key under `prefix`; answers how many there were (the benches check what a run wrote with it). */
export async function clearPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = "0";
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) n += await redis.del(...keys);
  } while (cursor !== "0");
  return n;
}

export function newRedis(): Redis {
  return new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
}
