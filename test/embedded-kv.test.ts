import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataDirBusyError, LOCK_FILE, lockDataDir } from "../src/embedded/lock.ts";
import { type EmbeddedStores, openEmbeddedStores } from "../src/embedded/stores.ts";
import { SqlKv } from "../src/online/embedded-kv.ts";
import type { OnlineKv, OnlineKvEntry } from "../src/online/kv.ts";
import { RedisKv } from "../src/online/redis-kv.ts";
import { createTestDatabase, type TestDatabase } from "./support/db.ts";
import { clearPrefix, newRedis, testPrefix } from "./support/redis.ts";

/**
 * The embedded online backend must answer exactly as the Redis one does: the same cases run against SqlKv on PGlite,
 * SqlKv on Postgres, and RedisKv, and expect the same results.
 */
const dir = mkdtempSync(path.join(tmpdir(), "larder-kv-"));
const prefix = testPrefix();
let embedded: EmbeddedStores;
let pgdb: TestDatabase;
const redis = newRedis();
const backends: Record<string, OnlineKv> = {};

beforeAll(async () => {
  embedded = await openEmbeddedStores(dir, { command: "serve", prefix, migrate: true });
  pgdb = await createTestDatabase();
  backends.pglite = await SqlKv.open(embedded.database.db);
  backends.postgres = await SqlKv.open(pgdb.database.db);
  backends.redis = new RedisKv(redis);
}, 60_000);

afterAll(async () => {
  await embedded?.close();
  await pgdb?.drop();
  await clearPrefix(redis, prefix);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

const SEP = "\x1f";
let n = 0;
const entry = (
  key: string,
  eventTs: number,
  createdTs: number,
  payload: string,
  layout = "L1",
  expireAtMs: number | null = null,
): OnlineKvEntry => ({
  key,
  value: `${eventTs}${SEP}${createdTs}${SEP}${layout}${SEP}${payload}`,
  eventTs,
  createdTs,
  layout,
  expireAtMs,
});

describe.each(["pglite", "postgres", "redis"])("online kv backend: %s", (name) => {
  const kv = () => backends[name]!;
  const k = (s: string) => `${prefix}${name}:${s}:${++n}`;
  const T = 1_700_000_000_000_000;

  it("answers one entry per key, in order, null when absent, repeats included", async () => {
    const a = k("a");
    const b = k("b");
    expect(await kv().putIfNewer([entry(a, T, 0, `"x"`)])).toEqual([true]);
    expect(await kv().getMany([b, a, a])).toEqual([
      null,
      `${T}${SEP}0${SEP}L1${SEP}"x"`,
      `${T}${SEP}0${SEP}L1${SEP}"x"`,
    ]);
    expect(await kv().getMany([])).toEqual([]);
  });

  it("never replaces a value by an older one; created time breaks ties; equal pairs overwrite", async () => {
    const a = k("a");
    await kv().putIfNewer([entry(a, T, 5, "v1")]);
    expect(await kv().putIfNewer([entry(a, T - 1, 9, "older")])).toEqual([false]);
    expect(await kv().putIfNewer([entry(a, T, 4, "older-created")])).toEqual([false]);
    expect(await kv().putIfNewer([entry(a, T, 5, "same")])).toEqual([true]);
    expect((await kv().getMany([a]))[0]).toMatch(/same$/);
    expect(await kv().putIfNewer([entry(a, T + 1, 0, "newer")])).toEqual([true]);
    expect((await kv().getMany([a]))[0]).toMatch(/newer$/);
  });

  it("always overwrites a value written with another layout (the view's schema changed)", async () => {
    const a = k("a");
    await kv().putIfNewer([entry(a, T, 0, "old-layout", "L1")]);
    expect(await kv().putIfNewer([entry(a, T - 10, 0, "new-layout", "L2")])).toEqual([true]);
    expect((await kv().getMany([a]))[0]).toMatch(/new-layout$/);
  });

  it("applies a key repeated in one call in order, ending with the newest", async () => {
    const a = k("a");
    const b = k("b");
    const res = await kv().putIfNewer([
      entry(a, T - 2, 0, "a2"),
      entry(b, T, 0, "b0"),
      entry(a, T, 0, "a0"),
      entry(a, T - 1, 0, "a1"),
    ]);
    expect(res).toEqual([true, true, true, false]);
    expect(await kv().getMany([a, b])).toEqual([expect.stringMatching(/a0$/), expect.stringMatching(/b0$/)]);
  });

  it("keeps the newest under concurrent writers", async () => {
    const a = k("a");
    const order = Array.from({ length: 30 }, (_, i) => i).sort(() => Math.random() - 0.5);
    await Promise.all(order.map((i) => kv().putIfNewer([entry(a, T + i, 0, `v${i}`)])));
    expect((await kv().getMany([a]))[0]).toMatch(/v29$/);
  });

  it("stores any string exactly (separators, quotes, backslashes, braces, unicode)", async () => {
    const a = k('we{ird},%"key\\');
    const payload = `"a\\"b"${SEP}{"x":[1,"}{"]}${SEP}"é ☃ \\u0000"${SEP}null`;
    await kv().putIfNewer([entry(a, T, 0, payload)]);
    expect(await kv().getMany([a])).toEqual([`${T}${SEP}0${SEP}L1${SEP}${payload}`]);
  });

  it("hides an expired entry and lets any write replace it", async () => {
    const a = k("a");
    await kv().putIfNewer([entry(a, T + 100, 0, "expired", "L1", Date.now() - 1000)]);
    expect(await kv().getMany([a])).toEqual([null]);
    expect(await kv().putIfNewer([entry(a, T, 0, "fresh", "L1", Date.now() + 60_000)])).toEqual([true]);
    expect((await kv().getMany([a]))[0]).toMatch(/fresh$/);
  });

  it("answers ping", async () => {
    await expect(kv().ping()).resolves.toBeUndefined();
  });
});

describe("embedded data directory", () => {
  it("refuses a second opener of a directory in use, naming the holder, before touching the files", async () => {
    embedded.lock.setPort(6599);
    const err = await openEmbeddedStores(dir, { command: "apply", prefix, migrate: true }).catch((e) => e);
    expect(err).toBeInstanceOf(DataDirBusyError);
    expect(err.message).toContain(`the embedded store in ${dir} is in use by`);
    expect(err.message).toContain("http://localhost:6599");
    // the holder still works
    await expect(backends.pglite!.ping()).resolves.toBeUndefined();
  });

  it("frees the directory on release, and takes over a lock whose process no longer runs", () => {
    const other = mkdtempSync(path.join(tmpdir(), "larder-lock-"));
    try {
      const first = lockDataDir(other, "demo");
      expect(() => lockDataDir(other, "apply")).toThrow(/in use by another larder process \(`larder demo`/);
      first.release();
      lockDataDir(other, "apply").release();
      // pid 2^22+1 is above Linux's largest pid_max, so it cannot be running
      writeFileSync(
        path.join(other, LOCK_FILE),
        JSON.stringify({ pid: 4194305, host: hostname(), command: "serve", since: "x" }),
      );
      const taken = lockDataDir(other, "apply");
      expect(JSON.parse(readFileSync(path.join(other, LOCK_FILE), "utf8")).pid).toBe(process.pid);
      taken.release();
      expect(existsSync(path.join(other, LOCK_FILE))).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
