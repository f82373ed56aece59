import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import { parseRedisUrl } from "../src/online/redis-url.ts";

const env = (REDIS_URL: string) => ({ DATABASE_URL: "postgres://localhost/x", REDIS_URL });

describe("REDIS_URL", () => {
  it("names one Redis, a cluster's seeds, or the sentinels and their master", () => {
    expect(parseRedisUrl("redis://:pw@cache:6380/2")).toMatchObject({
      mode: "single",
      node: { host: "cache", port: 6380 },
    });
    expect(parseRedisUrl("rediss://cache")).toMatchObject({ mode: "single", node: { host: "cache", port: 6379 } });
    expect(parseRedisUrl("redis+cluster://a:7000,b:7001,[::1]:7002")).toEqual({
      mode: "cluster",
      nodes: [
        { host: "a", port: 7000 },
        { host: "b", port: 7001 },
        { host: "::1", port: 7002 },
      ],
      username: undefined,
      password: undefined,
    });
    expect(parseRedisUrl("redis+sentinel://u:p%40ss@s1:26379,s2:26379/mymaster")).toEqual({
      mode: "sentinel",
      sentinels: [
        { host: "s1", port: 26379 },
        { host: "s2", port: 26379 },
      ],
      name: "mymaster",
      username: "u",
      password: "p@ss",
    });
    expect(loadConfig(env("redis+cluster://10.0.0.1:7000")).mode).toMatchObject({ kind: "external" });
  });

  it.each([
    ["http://cache:6379", "REDIS_URL: must start with redis://, rediss://, redis+cluster:// or redis+sentinel://"],
    ["redis+cluster://a:7000,,b:7001", "REDIS_URL: redis+cluster:// needs host:port[,host:port…] (an entry is empty)"],
    ["redis+cluster://a:7000,b", 'REDIS_URL: "b" is not host:port'],
    ["redis+cluster://a:99999", 'REDIS_URL: "a:99999" is not host:port'],
    ["redis+cluster://a:7000/1", "REDIS_URL: redis+cluster:// takes no path (a Redis Cluster has only database 0)"],
    ["redis+sentinel://s1:26379", "REDIS_URL: redis+sentinel:// needs the master's name as its path"],
    ["redis+sentinel://s1:26379/", "REDIS_URL: redis+sentinel:// needs the master's name as its path"],
    ["redis://cache:6379/db", 'REDIS_URL: path "/db" is not a database number'],
    ["redis://:6379", "REDIS_URL: is not a valid URL"],
  ])("refuses %s with one line naming what is wrong", (url, message) => {
    let error: unknown;
    try {
      loadConfig(env(url));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(`invalid configuration: ${message}`);
    expect((error as Error).message).not.toContain("\n");
  });

  it("reads LARDER_REDIS_READ_FROM and LARDER_REDIS_WAIT_REPLICAS, refusing other values", () => {
    const c = loadConfig({ ...env("redis://x:1"), LARDER_REDIS_READ_FROM: "replica", LARDER_REDIS_WAIT_REPLICAS: "1" });
    expect([c.LARDER_REDIS_READ_FROM, c.LARDER_REDIS_WAIT_REPLICAS]).toEqual(["replica", 1]);
    expect(loadConfig(env("redis://x:1")).LARDER_REDIS_READ_FROM).toBe("master");
    expect(() => loadConfig({ ...env("redis://x:1"), LARDER_REDIS_READ_FROM: "slave" })).toThrow(
      /LARDER_REDIS_READ_FROM/,
    );
    expect(() => loadConfig({ ...env("redis://x:1"), LARDER_REDIS_WAIT_REPLICAS: "-1" })).toThrow(
      /LARDER_REDIS_WAIT_REPLICAS/,
    );
  });
});
