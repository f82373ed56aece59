/**
 * Sentinel faults ioredis does not recover from by itself, and the watchdog (src/online/sentinel-watchdog.ts) does.
 * Each test has a Sentinel set-up of its own (1 master, 1 replica, 3 sentinels; test/support/redis-topology.ts),
 * pauses (SIGSTOP) or kills nodes of it under a loop of reads through the online store, and checks that reads answer
 * again while the paused node stays paused. Without the watchdog neither recovers at all (ioredis stays on the hung
 * replica; ioredis' connection ends for good). The usual failover (a killed master, nothing paused) is in
 * test/online-cluster.test.ts.
 */
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../src/errors.ts";
import { connectOnlineRedis, type OnlineRedisOptions, RedisOnlineStore } from "../src/online/redis-store.ts";
import { testPrefix } from "./support/redis.ts";
import {
  commandCalls,
  type RedisNode,
  redisCli,
  type SentinelTopology,
  startRedisSentinel,
  waitFor,
} from "./support/redis-topology.ts";

/** Generous: these check that service comes back by itself at all (ioredis alone: never), not how fast. */
const RECOVERY_MS = 30_000;
const PROMOTION_MS = 45_000;

let replicaLoss: SentinelTopology;
let failover: SentinelTopology;
const stores: RedisOnlineStore[] = [];
const paused = new Set<RedisNode>();

beforeAll(async () => {
  [replicaLoss, failover] = await Promise.all([startRedisSentinel(), startRedisSentinel()]);
}, 60_000);

afterAll(async () => {
  for (const s of stores) await s.close().catch(() => {});
  for (const n of paused) resume(n);
  await Promise.all([replicaLoss?.stop(), failover?.stop()]);
});

function pause(n: RedisNode) {
  paused.add(n);
  process.kill(n.child.pid!, "SIGSTOP");
}

function resume(n: RedisNode) {
  paused.delete(n);
  if (n.child.exitCode === null && n.child.signalCode === null) process.kill(n.child.pid!, "SIGCONT");
}

/** The online store over the set-up, and the lines it logs. */
function store(topo: SentinelTopology, opts: OnlineRedisOptions = {}) {
  const logs: { msg: string; role?: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const s = new RedisOnlineStore(connectOnlineRedis(topo.url, { ...opts, logger }), testPrefix());
  stores.push(s);
  return { store: s, logs, key: `${s.prefix}k` };
}

interface Read {
  start: number;
  end: number;
  error?: unknown;
}

/** Reads `key` (which holds `value`) one read after another, 20 ms apart, into `log`, until `stop()`. */
function reading(s: RedisOnlineStore, key: string, value: string) {
  const log: Read[] = [];
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const start = Date.now();
      try {
        const [v] = await s.kv.getMany([key]);
        if (v !== value) throw new Error(`read ${v}, not ${value}`);
        log.push({ start, end: Date.now() });
      } catch (error) {
        log.push({ start, end: Date.now(), error });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    log,
    stop: async () => {
      stopped = true;
      await done;
      return log;
    },
  };
}

const entry = (key: string) => ({
  key,
  value: "1\x1f0\x1fl\x1fv",
  eventTs: 1,
  createdTs: 0,
  layout: "l",
  expireAtMs: null,
});

/** Waits until a read that started after `since` succeeded; when it ended. */
async function recovery(log: Read[], since: number): Promise<number> {
  await waitFor(async () => log.some((r) => r.start > since && !r.error), RECOVERY_MS, 50).catch((e) => {
    const last = log.at(-1)?.error;
    throw new Error(`no read succeeded: ${(e as Error).message}; the last failed with: ${String(last)}`);
  });
  return log.find((r) => r.start > since && !r.error)!.end;
}

/** The master's address as each of these sentinels reports it. */
const mastersSeenBy = (sentinels: RedisNode[], topo: SentinelTopology) =>
  Promise.all(
    sentinels.map(async (o) =>
      (await redisCli(o.port, ["sentinel", "get-master-addr-by-name", topo.masterName])).trim().split("\n").join(":"),
    ),
  );

/** Writes `key` once the store has connected (commands are not queued meanwhile). */
async function written(s: RedisOnlineStore, key: string) {
  await waitFor(async () => (await s.kv.putIfNewer([entry(key)])).length === 1, 20_000);
}

/** Every failed read failed as "unavailable" (a 503), and there were some. */
function expectOnlyUnavailable(log: Read[]) {
  const failures = log.filter((r) => r.error);
  expect(failures.length, "the fault was seen").toBeGreaterThan(0);
  for (const f of failures) {
    expect(f.error, String(f.error)).toBeInstanceOf(DomainError);
    expect((f.error as DomainError).code).toBe("unavailable");
  }
}

describe("the online store on Sentinel, where ioredis alone does not recover", () => {
  it("LARDER_REDIS_READ_FROM=replica: a replica that hangs (SIGSTOP) is dropped, and reads go to the master", async () => {
    const topo = replicaLoss;
    const { store: s, logs, key } = store(topo, { readFrom: "replica" });
    await written(s, key);
    // reads go to the replica once it is connected and has the value
    const mgets = async () => (await commandCalls(topo.replica.port)).mget ?? 0;
    await waitFor(async () => {
      const before = await mgets();
      const [v] = await s.kv.getMany([key]).catch(() => [null]);
      return v === entry(key).value && (await mgets()) > before;
    }, 20_000);

    const reads = reading(s, key, entry(key).value);
    await new Promise((r) => setTimeout(r, 300));
    const pausedAt = Date.now();
    pause(topo.replica);
    // the hung replica's socket stays open: ioredis keeps it "ready" and sends it every read, each timing out; the
    // sentinels mark it down, and the watchdog, asked by the failed reads, drops the connection
    const back = await recovery(reads.log, pausedAt + 100);
    const log = await reads.stop();
    expect(paused.has(topo.replica)).toBe(true);
    expectOnlyUnavailable(log.filter((r) => r.start >= pausedAt));
    expect(log.filter((r) => r.start > back).every((r) => !r.error)).toBe(true);
    expect(logs.filter((l) => l.role === "replica").map((l) => l.msg)).toEqual([
      expect.stringMatching(/^Redis replica via the sentinels: connected to .*; reconnecting$/),
    ]);
  }, 60_000);

  it("a sentinel paused through the master's failover: ioredis' reconnection ends for good; the watchdog restarts it", async () => {
    const topo = failover;
    // a sentinel's answer may take as long as a command: long here, so the reconnection that asks the paused sentinel
    // is still waiting when the failover is announced (with 2 s it is so only some of the time)
    const { store: s, logs, key } = store(topo, { commandTimeoutMs: 60_000 });
    await written(s, key);
    const reads = reading(s, key, entry(key).value);
    await new Promise((r) => setTimeout(r, 300));
    // the sentinel ioredis asks first (the first listed, which it connected through)
    const [first, ...others] = topo.sentinels;
    pause(first!);
    const killedAt = Date.now();
    topo.master.kill();
    // the other two promote the replica and announce it; ioredis hears it while it still waits for the paused one
    await waitFor(
      async () => (await mastersSeenBy(others, topo)).every((m) => m === topo.replica.address),
      PROMOTION_MS,
      200,
    );
    // all this while, the reconnection waited for the paused sentinel: not one read succeeded
    expect(reads.log.some((r) => r.start > killedAt && !r.error)).toBe(false);
    const resumedAt = Date.now();
    resume(first!);
    await recovery(reads.log, resumedAt);
    // the resumed sentinel learns of the failover too, and announces it again: ioredis reconnects once more, which
    // may cost a read or two; what counts is that reads succeed once the sentinels agree
    await waitFor(
      async () => (await mastersSeenBy(topo.sentinels, topo)).every((m) => m === topo.replica.address),
      20_000,
    );
    await recovery(reads.log, Date.now());
    const log = await reads.stop();
    expectOnlyUnavailable(log.filter((r) => r.start >= killedAt));
    expect(logs.map((l) => l.msg)).toContainEqual(
      expect.stringMatching(/^Redis via the sentinels: the client had stopped reconnecting/),
    );
  }, 90_000);
});
