/**
 * What one many-key read costs on a Redis Cluster against one Redis, in the client's CPU and in Redis's own CPU (a
 * tool for working on the cluster read path, not a benchmark of record; `BENCH_REDIS=cluster npm run bench:online` is).
 *
 *   npx tsx bench/cluster-reads.ts            (through /work/bin/run-bench on a shared machine)
 *
 * Starts a throw-away cluster (3 masters + 3 replicas), writes 10,000 entities × 5 views of online-sized values under
 * a throw-away prefix both there and on REDIS_URL, then reads the keys of a 100×10 and a 100×50 lookup (100 and 500
 * keys, 100 hash tags), 16 reads at a time for BENCH_SECONDS (default 2) per way, twice, in these ways:
 * - single:   RedisKv on one Redis (one MGET, as larder reads one Redis);
 * - cluster:  ClusterKv (one read-only script per master, as larder reads a cluster);
 * - pipeline: per master, one ioredis pipeline of one MGET per slot (the alternative to the script).
 * For each: reads/s, this process's CPU per read, and the Redis servers' CPU per read (INFO cpu, summed over nodes).
 */
import calculateSlot from "cluster-key-slot";
import { Redis } from "ioredis";
import { keySlot } from "../src/online/key-slot.ts";
import { connectOnlineRedis } from "../src/online/redis-store.ts";
import { clearPrefix } from "../test/support/redis.ts";
import { redisCli, startRedisCluster } from "../test/support/redis-topology.ts";
import { benchTag, log, markdownTable, REDIS_URL } from "./support.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ENTITIES = 10_000;
const VIEWS = 5;
const CONCURRENCY = 16;
const prefix = `larder_bench_reads:${benchTag()}:`;
const key = (i: number, v: number) => `${prefix}bench:{driver_id=${i}}:bench_v${v}`;
const value = (i: number) =>
  `1733100000000000\x1f0\x1fabcdef12\x1f"2026-12-02T07:00:00Z"\x1f0.1234\x1f0.5\x1f0.25\x1f0.75\x1f${i}\x1f${i * 3}` +
  `\x1f${i * 7}\x1f"s${i}-7-abcdef"\x1f"s${i}-8-abcdef"\x1ftrue`;

const cluster = await startRedisCluster();
const single = new Redis(REDIS_URL);
const onCluster = connectOnlineRedis(cluster.url);
const onSingle = connectOnlineRedis(REDIS_URL);
for (const c of [onCluster.client, onSingle.client])
  if (c.status !== "ready") await new Promise((resolve) => c.once("ready", resolve));
try {
  log(`writing ${ENTITIES} entities × ${VIEWS} views…`);
  for (let v = 0; v < VIEWS; v++)
    for (let s = 0; s < ENTITIES; s += 1000) {
      const entries = Array.from({ length: 1000 }, (_, k) => ({
        key: key(s + k, v),
        value: value(s + k),
        eventTs: 1,
        createdTs: 0,
        layout: "abcdef12",
        expireAtMs: null,
      }));
      await Promise.all([onCluster.kv.putIfNewer(entries), onSingle.kv.putIfNewer(entries)]);
    }
  const c = onCluster.client as import("ioredis").Cluster;
  const masters = new Map(c.nodes("master").map((n) => [`${n.options.host}:${n.options.port}`, n]));

  type Read = (keys: string[]) => Promise<unknown[]>;
  const pipeline: Read = async (keys) => {
    const out: unknown[] = new Array(keys.length);
    const byNode = new Map<string, Map<number, number[]>>();
    for (let i = 0; i < keys.length; i++) {
      const slot = keySlot(keys[i]!);
      const node = c.slots[slot]![0]!;
      let slots = byNode.get(node);
      if (!slots) {
        slots = new Map();
        byNode.set(node, slots);
      }
      const at = slots.get(slot);
      if (at) at.push(i);
      else slots.set(slot, [i]);
    }
    await Promise.all(
      [...byNode].map(async ([node, slots]) => {
        const p = masters.get(node)!.pipeline();
        for (const at of slots.values()) p.mgetBuffer(at.map((i) => keys[i]!));
        const res = (await p.exec())!;
        let q = 0;
        for (const at of slots.values()) {
          const [err, values] = res[q++]!;
          if (err) throw err;
          at.forEach((i, j) => {
            out[i] = (values as unknown[])[j];
          });
        }
      }),
    );
    return out;
  };
  const ways: [string, Read, number[]][] = [
    ["single", (keys) => onSingle.kv.getManyBytes!(keys), [Number(new URL(REDIS_URL).port || 6379)]],
    ["cluster", (keys) => onCluster.kv.getManyBytes!(keys), cluster.nodes.map((n) => n.port)],
    ["pipeline", pipeline, cluster.nodes.map((n) => n.port)],
  ];
  const redisCpu = async (ports: number[]) => {
    let seconds = 0;
    for (const port of ports) {
      const info = await redisCli(port, ["info", "cpu"]);
      seconds += Number(/used_cpu_user:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]);
    }
    return seconds;
  };
  const rows: string[][] = [];
  for (const shape of [
    { name: "100×10", views: 1 },
    { name: "100×50", views: 5 },
  ]) {
    const reads = Array.from({ length: 64 }, (_, b) => {
      const keys: string[] = [];
      for (let v = 0; v < shape.views; v++)
        for (let k = 0; k < 100; k++) keys.push(key((b * 977 + k * 89) % ENTITIES, v));
      return keys;
    });
    if (new Set(reads[0]!.map((k) => calculateSlot(k))).size < 90) throw new Error("keys should span ~100 slots");
    for (let round = 1; round <= 2; round++)
      for (const [name, read, ports] of ways) {
        const redis0 = await redisCpu(ports);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const until = t0 + SECONDS * 1000;
        let n = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (performance.now() < until) {
              const values = await read(reads[n++ % reads.length]!);
              if (values.some((x) => x === null || x === undefined)) throw new Error(`${name}: a value is missing`);
            }
          }),
        );
        const seconds = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const redis = (await redisCpu(ports)) - redis0;
        rows.push([
          shape.name,
          String(round),
          name,
          (n / seconds).toFixed(0),
          ((cpu.user + cpu.system) / n).toFixed(0),
          ((redis * 1e6) / n).toFixed(0),
        ]);
      }
  }
  console.log(
    [
      "",
      `Reads of 100 entities' keys, ${CONCURRENCY} at a time, ${SECONDS}s per way and round; Redis ${(await redisCli(cluster.nodes[0]!.port, ["info", "server"])).match(/redis_version:(\S+)/)?.[1]}.`,
      "",
      ...markdownTable(["lookup", "round", "way", "reads/s", "client CPU µs/read", "Redis CPU µs/read"], rows),
    ].join("\n"),
  );
} finally {
  await clearPrefix(single, prefix);
  single.disconnect();
  await onCluster.kv.close();
  await onSingle.kv.close();
  await cluster.stop();
}
process.exit(0);
