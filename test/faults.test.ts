/**
 * Faults: the online store (a redis-server of the test's own, killed and restarted) and Postgres (behind a TCP proxy the
 * test closes and reopens) go away under a stream of lookups. The shared Redis and Postgres are never touched.
 */
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyStore, KeyCache } from "../src/auth/keys.ts";
import { connectPostgres, type Database } from "../src/db/client.ts";
import { type App, type AppDeps, createApp } from "../src/http/app.ts";
import { ErrorBody } from "../src/http/errors.ts";
import { silentLogger } from "../src/logger.ts";
import { createIntrospector } from "../src/offline/introspect.ts";
import { connectRedis, RedisOnlineStore } from "../src/online/redis-store.ts";
import { RegistryService } from "../src/registry/service.ts";
import { SnapshotCache } from "../src/registry/snapshot-cache.ts";
import { exampleDefinitions } from "./support/app.ts";
import { createTestDatabase, loadExampleData, type TestDatabase } from "./support/db.ts";
import { freePort } from "./support/process.ts";
import { clearPrefix, newRedis, TEST_REDIS_URL, testPrefix } from "./support/redis.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Generous: "never hangs" means an answer well within this, whatever the machine. */
const BOUND_MS = 10_000;

/** `start` and `at`: when the request was sent and when its answer came (Date.now()). */
type Result = { status: number; ms: number; body: any; start: number; at: number };

async function call(app: App, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const t0 = performance.now();
  const res = await app.request(path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed as any, ms: performance.now() - t0 };
}

/** A steady stream of lookups from a few concurrent clients, every answer recorded. */
function lookupStream(app: App, headers: Record<string, string> = {}, workers = 3) {
  const results: Result[] = [];
  let stopped = false;
  const body = {
    features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
    entities: { driver_id: [1001, 1002, 1003] },
  };
  const loops = Array.from({ length: workers }, async () => {
    while (!stopped) {
      const start = Date.now();
      const r = await call(app, "POST", "/get-online-features", body, headers);
      results.push({ ...r, start, at: Date.now() });
      await sleep(10);
    }
  });
  return {
    results,
    since: (t: number) => results.filter((r) => r.at >= t),
    sentSince: (t: number) => results.filter((r) => r.start >= t),
    async waitFor(pred: (r: Result) => boolean, count: number, after: number, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (results.filter((r) => r.at >= after && pred(r)).length < count) {
        if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${count} matching answers`);
        await sleep(50);
      }
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

function expectUnavailable(r: { status: number; body: unknown }) {
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  expect(ErrorBody.parse(r.body).error.code).toBe("unavailable");
}

function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** A redis-server of our own, on its own port, without persistence. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
    { stdio: "ignore" },
  );
  await waitForPort(port);
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/** A TCP proxy to Postgres that the test can cut (every connection dropped, new ones refused) and restore. */
class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  constructor(
    readonly port: number,
    readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function materializeAll(app: App, headers: Record<string, string> = {}) {
  return call(
    app,
    "POST",
    "/v1/projects/demo/materialize",
    { start_ts: "2000-01-01T00:00:00Z", end_ts: "2100-01-01T00:00:00Z", feature_views: ["driver_hourly_stats"] },
    headers,
  );
}

const LOOKUP = {
  features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
  entities: { driver_id: [1001, 1002, 1003] },
};

describe("the online store goes away", () => {
  let redisPort: number;
  let redisProc: ChildProcess;
  let db: TestDatabase;
  let app: App;
  let snapshots: SnapshotCache;
  let closeRedis: () => void;
  const redisLogLines: { msg: string; err: string }[] = [];
  const appLogLines: { level: number; msg: string; err: unknown }[] = [];

  beforeAll(async () => {
    redisPort = await freePort();
    redisProc = await startRedis(redisPort);
    db = await createTestDatabase();
    await loadExampleData(db.url);
    const logger = silentLogger();
    const redisLog = pino({ level: "info" }, { write: (line: string) => void redisLogLines.push(JSON.parse(line)) });
    const redis = connectRedis(`redis://127.0.0.1:${redisPort}`, { logger: redisLog });
    closeRedis = () => redis.disconnect();
    const online = new RedisOnlineStore(redis, testPrefix());
    const registry = new RegistryService({
      db: db.database.db,
      logger,
      introspect: createIntrospector(db.database.db),
    });
    snapshots = new SnapshotCache({ registry, logger, pollMs: 60_000 });
    await registry.apply("demo", await exampleDefinitions());
    await snapshots.reload("demo");
    const deps: AppDeps = {
      logger: pino({ level: "warn" }, { write: (line: string) => void appLogLines.push(JSON.parse(line)) }),
      db: db.database.db,
      registry,
      snapshots,
      online,
      defaultProject: "demo",
      limits: { maxBodyBytes: 1 << 20, maxEntityRows: 1000 },
    };
    app = createApp(deps);
  });
  afterAll(async () => {
    closeRedis?.();
    if (redisProc) await kill(redisProc);
    await db?.drop();
  });

  it("answers 503 quickly while Redis is down, records an interrupted job as failed, and recovers with no restart", async () => {
    const before = await materializeAll(app);
    expect(before.status, JSON.stringify(before.body)).toBe(200);
    const expected = await call(app, "POST", "/get-online-features", LOOKUP);
    expect(expected.status).toBe(200);
    expect(expected.body.results[1].statuses).toEqual(["PRESENT", "PRESENT", "PRESENT"]);

    const stream = lookupStream(app);
    try {
      await stream.waitFor((r) => r.status === 200, 10, 0);

      const downAt = Date.now();
      await kill(redisProc);
      await stream.waitFor((r) => r.status === 503, 15, downAt);
      const down = stream.since(downAt).find((r) => r.status === 503)!;
      expectUnavailable(down);
      // the answer says which store, where, and why
      const unreachable = new RegExp(
        `^Redis at 127\\.0\\.0\\.1:${redisPort} is unreachable \\((E[A-Z]+|connection lost)\\)`,
      );
      expect(ErrorBody.parse(down.body).error.message).toMatch(unreachable);

      // while down: readiness says what is wrong, liveness stays up, writes and jobs fail cleanly
      const health = await call(app, "GET", "/health");
      expect(health.status).toBe(503);
      expect(health.body.problems.join(" ")).toMatch(
        /online store: Redis at 127\.0\.0\.1:\d+ is unreachable \((E[A-Z]+|connection lost)\)/,
      );
      expect((await call(app, "GET", "/health/live")).status).toBe(200);
      const push = await call(app, "POST", "/push", {
        push_source_name: "driver_stats_push",
        df: { driver_id: [1001], event_timestamp: [new Date().toISOString()], conv_rate: [0.5], acc_rate: [0.5] },
      });
      expectUnavailable(push);
      const job = await materializeAll(app);
      expectUnavailable(job);
      const jobs = await call(app, "GET", "/v1/projects/demo/materialization-jobs");
      expect(jobs.body.jobs[0].status).toBe("failed");
      expect(jobs.body.jobs[0].error).toBeTruthy();

      // the outage is logged once, not at every reconnection attempt; the failed requests log no stack trace each
      expect(redisLogLines.filter((l) => / is unreachable /.test(l.msg)).map((l) => l.msg)).toEqual([
        expect.stringMatching(unreachable),
      ]);
      const failedRequests = appLogLines.filter((l) => /request failed/.test(l.msg));
      expect(failedRequests.every((l) => l.level === 40 && typeof l.err === "string")).toBe(true);
      expect(failedRequests.length).toBeLessThanOrEqual(new Set(failedRequests.map((l) => l.err)).size);

      const upAt = Date.now();
      redisProc = await startRedis(redisPort);
      await stream.waitFor((r) => r.status === 200, 15, upAt);
      expect(redisLogLines.filter((l) => / is reachable again$/.test(l.msg))).toHaveLength(1);
      const recoveredAt = Date.now();
      await stream.waitFor((r) => r.start >= recoveredAt, 15, recoveredAt);
      // once back, every lookup sent is answered 200 again: no restart, no stuck connection
      const sent = stream.sentSince(recoveredAt).map((r) => r.status);
      expect(sent).toEqual(sent.map(() => 200));
    } finally {
      await stream.stop();
    }
    // nothing hung and nothing else went wrong: every answer was a 200 or a clean 503
    for (const r of stream.results) {
      expect([200, 503]).toContain(r.status);
      expect(r.ms).toBeLessThan(BOUND_MS);
      if (r.status === 503) ErrorBody.parse(r.body);
    }
    expect((await call(app, "GET", "/health")).status).toBe(200);

    // the new Redis is empty (no persistence); re-running the failed job brings back exactly the data there was
    const rerun = await materializeAll(app);
    expect(rerun.status, JSON.stringify(rerun.body)).toBe(200);
    expect(rerun.body.jobs[0].status).toBe("succeeded");
    const after = await call(app, "POST", "/get-online-features", LOOKUP);
    expect(after.body).toEqual(expected.body);
  });
});

describe("Postgres goes away", () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let viaProxy: Database;
  let app: App;
  let snapshots: SnapshotCache;
  let keys: KeyCache;
  let keyStore: ApiKeyStore;
  let auth: Record<string, string>;
  const prefix = testPrefix();

  beforeAll(async () => {
    db = await createTestDatabase();
    await loadExampleData(db.url);
    proxy = new TcpProxy(await freePort(), Number(new URL(db.url).port || 5432));
    await proxy.open();
    const proxyUrl = new URL(db.url);
    proxyUrl.port = String(proxy.port);
    viaProxy = connectPostgres(proxyUrl.toString(), { statementTimeoutMs: 5000, connectTimeoutMs: 2000 });
    const logger = silentLogger();
    const redis = connectRedis(TEST_REDIS_URL);
    const online = new RedisOnlineStore(redis, prefix);
    const registry = new RegistryService({ db: viaProxy.db, logger, introspect: createIntrospector(viaProxy.db) });
    snapshots = new SnapshotCache({ registry, logger, pollMs: 200 });
    await registry.apply("demo", await exampleDefinitions());
    await snapshots.reload("demo");
    snapshots.start();
    const pepper = "fault-test-pepper-0123";
    // keys are made straight in the database (as the CLI does), and served from the app's cache
    keyStore = new ApiKeyStore({ db: db.database.db, pepper });
    keys = new KeyCache({ store: new ApiKeyStore({ db: viaProxy.db, pepper }), pepper, pollMs: 200, missRefreshMs: 0 });
    auth = { authorization: `Bearer ${(await keyStore.create({ scope: "admin" })).key}` };
    await keys.refresh();
    keys.start();
    app = createApp({
      logger,
      db: viaProxy.db,
      registry,
      snapshots,
      online,
      defaultProject: "demo",
      limits: { maxBodyBytes: 1 << 20, maxEntityRows: 1000 },
      auth: keys,
    });
  });
  afterAll(async () => {
    keys?.stop();
    snapshots?.stop();
    await proxy?.close().catch(() => {});
    // the test closes the pool itself; this is for when it failed before that, and must not hang if a client leaked
    if (viaProxy && !viaProxy.pool?.ending) await Promise.race([viaProxy.close().catch(() => {}), sleep(2000)]);
    const r = newRedis();
    await clearPrefix(r, prefix).catch(() => {});
    r.disconnect();
    await db?.drop();
  });

  /** A push to the offline store (a Postgres transaction): 503 while Postgres is away, 200 once it is back. */
  const pushOffline = () =>
    call(
      app,
      "POST",
      "/push",
      {
        push_source_name: "driver_stats_push",
        df: { driver_id: [1001], event_timestamp: [new Date().toISOString()], conv_rate: [0.5], acc_rate: [0.5] },
        to: "offline",
      },
      auth,
    );

  it("keeps answering lookups from the snapshot, refuses what needs Postgres with 503, and recovers by itself", async () => {
    const mat = await materializeAll(app, auth);
    expect(mat.status, JSON.stringify(mat.body)).toBe(200);
    const expected = await call(app, "POST", "/get-online-features", LOOKUP, auth);
    expect(expected.status).toBe(200);

    const stream = lookupStream(app, auth);
    let downAt = 0;
    let upAt = 0;
    try {
      await stream.waitFor((r) => r.status === 200, 10, 0);
      downAt = Date.now();
      await proxy.close();

      const offlinePush = await pushOffline();
      expectUnavailable(offlinePush);
      expectUnavailable(await call(app, "POST", "/v1/projects/demo/apply", await exampleDefinitions(), auth));
      const registryRead = await call(app, "GET", "/v1/projects/demo/feature-views", undefined, auth);
      expectUnavailable(registryRead);
      // the answer names the store that is down, not only the driver's "connect ECONNREFUSED"
      expect(ErrorBody.parse(registryRead.body).error.message).toMatch(/^Postgres( at \S+)? is unreachable \(.+\)$/);
      expectUnavailable(await materializeAll(app, auth));
      // a push to the online store alone needs no Postgres
      const onlinePush = await call(
        app,
        "POST",
        "/push",
        {
          push_source_name: "driver_stats_push",
          df: { driver_id: [1049], event_timestamp: [new Date().toISOString()], conv_rate: [0.25], acc_rate: [0.75] },
        },
        auth,
      );
      expect(onlinePush.status, JSON.stringify(onlinePush.body)).toBe(200);
      // a key the server has never seen cannot be checked: 503, not a hang and not a wrong 401
      const fresh = (await keyStore.create({ scope: "read" })).key;
      expectUnavailable(await call(app, "POST", "/get-online-features", LOOKUP, { authorization: `Bearer ${fresh}` }));
      // readiness is about serving lookups: the registry is loaded and Redis answers
      expect((await call(app, "GET", "/health")).status).toBe(200);

      // let the lookups run through a few failed registry and key polls
      await sleep(1500);
      await stream.waitFor(() => true, 30, downAt);

      upAt = Date.now();
      await proxy.open();
      let ok = 0;
      for (let i = 0; i < 100 && ok !== 200; i++) {
        ok = (await call(app, "GET", "/v1/projects/demo/feature-views", undefined, auth)).status;
        if (ok !== 200) await sleep(100);
      }
      expect(ok).toBe(200);
      expect(
        (await call(app, "POST", "/get-online-features", LOOKUP, { authorization: `Bearer ${fresh}` })).status,
      ).toBe(200);
    } finally {
      await stream.stop();
    }
    const during = stream.results.filter((r) => r.at >= downAt && r.at < upAt);
    expect(during.length).toBeGreaterThan(20);
    // every lookup, through the outage, answered from the snapshot and Redis, with the same data
    for (const r of stream.results) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.ms).toBeLessThan(BOUND_MS);
    }
    expect(during.at(-1)!.body).toEqual(expected.body);

    const offlinePush = await pushOffline();
    expect(offlinePush.status, JSON.stringify(offlinePush.body)).toBe(200);
    expect((await call(app, "POST", "/v1/projects/demo/apply", await exampleDefinitions(), auth)).status).toBe(200);

    // Nothing that failed during the outage kept its connection: a client left checked out is a pool slot lost for
    // good (a few outages and Postgres calls wait forever), and pool.end() would never return.
    const pool = viaProxy.pool!;
    keys.stop();
    snapshots.stop();
    const deadline = Date.now() + BOUND_MS;
    while (pool.idleCount !== pool.totalCount && Date.now() < deadline) await sleep(50);
    expect({ checkedOut: pool.totalCount - pool.idleCount, waiting: pool.waitingCount }).toEqual({
      checkedOut: 0,
      waiting: 0,
    });
    const closed = await Promise.race([viaProxy.close().then(() => true), sleep(BOUND_MS).then(() => false)]);
    expect(closed, "pool.end() returned").toBe(true);
  });
});
