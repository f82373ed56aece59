/**
 * What one many-key read costs on a Redis Cluster against one Redis, in the client's CPU and in Redis's own CPU (a
 * tool for working on the cluster read path, not a benchmark of record; `BENCH_REDIS=cluster npm run bench:online` is).
 *
 *   npx tsx bench/cluster-reads.ts            (through /work/bin/run-bench on a shared machine)
 *
 * Starts a throw-away cluster (3 masters + 3 replicas), writes 10,000 entities × 5 views of online-sized values under
 * a throw-away prefix both there and on REDIS_URL, then reads the keys of a 100×10 and a 100×50 lookup (100 and 500
 * keys, 100 entities), 1 and 16 reads at a time for BENCH_SECONDS (default 2) per way, twice, in these ways:
 * - single:   RedisKv on one Redis (one MGET, as larder reads one Redis), larder's keys;
 * - cluster:  ClusterKv, larder's keys (16 slot buckets): per master one round trip of per-slot MGETs;
 * - entity script: the layout before slot buckets, one hash slot per entity, read as it was (per master one read-only
 *             script of GETs), for comparison;
 * - bucket B: other bucket counts (BENCH_BUCKETS, default 64), per master one read-only script doing one MGET per
 *             slot ("script"; BENCH_NO_SCRIPT=1 leaves it out) or a pipeline of native MGETs on the node's connection.
 * (The bucket ways were the prototype measured before slot buckets were built; see docs/scale-out.md.)
 * For each: reads/s, this process's CPU per read, and the Redis servers' CPU per read (INFO cpu, summed over nodes).
 */
import { Redis } from "ioredis";
import { keySlot } from "../src/online/key-slot.ts";
import { onlineKey } from "../src/online/layout.ts";
import { ReadsPerTurn } from "../src/online/redis-kv.ts";
import { connectOnlineRedis } from "../src/online/redis-store.ts";
import { clearPrefix } from "../test/support/redis.ts";
import { redisCli, startRedisCluster } from "../test/support/redis-topology.ts";
import { benchTag, log, markdownTable, REDIS_URL } from "./support.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ENTITIES = 10_000;
const VIEWS = 5;
const BUCKETS = (process.env.BENCH_BUCKETS ?? "64").split(",").map(Number);
const prefix = `larder_bench_reads:${benchTag()}:`;
const key = (i: number, v: number) => onlineKey(prefix, "bench", `bench_v${v}`, `driver_id=${i}`);
const entityKey = (i: number, v: number) => `${prefix}bench:{driver_id=${i}}:bench_v${v}`;
/** How a cluster node read keys of many slots before slot buckets. */
const READ_ACROSS_SLOTS = `#!lua flags=no-writes,allow-cross-slot-keys
local out = {}
for i = 1, #ARGV do out[i] = redis.call('GET', ARGV[i]) end
return out
`;
const value = (i: number) =>
  `1733100000000000\x1f0\x1fabcdef12\x1f"2026-12-02T07:00:00Z"\x1f0.1234\x1f0.5\x1f0.25\x1f0.75\x1f${i}\x1f${i * 3}` +
  `\x1f${i * 7}\x1f"s${i}-7-abcdef"\x1f"s${i}-8-abcdef"\x1ftrue`;

/** Bucket i's tag: the first `<i>.<n>` whose slot lies in the i-th of B equal slot ranges. */
function bucketTags(b: number): string[] {
  const tags: string[] = [];
  for (let i = 0; i < b; i++)
    for (let n = 0; ; n++) {
      const tag = `${i}.${n}`;
      if (Math.floor((keySlot(`{${tag}}`) * b) / 16384) === i) {
        tags.push(tag);
        break;
      }
    }
  return tags;
}
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
const bucketKey = (tags: string[], i: number, v: number) => {
  const entity = `driver_id=${i}`;
  return `${prefix}bench:{${tags[fnv1a(entity) % tags.length]}}${entity}:bench_v${v}`;
};

/** Per master: ARGV = g, then g counts, then the keys group by group; one MGET per group (one slot). */
const READ_GROUPS = `#!lua flags=no-writes,allow-cross-slot-keys
local g = tonumber(ARGV[1])
local out = {}
local at = g + 2
for j = 1, g do
  local n = tonumber(ARGV[j + 1])
  out[j] = redis.call('MGET', unpack(ARGV, at, at + n - 1))
  at = at + n
end
return out
`;

const cluster = await startRedisCluster();
const single = new Redis(REDIS_URL);
const onCluster = connectOnlineRedis(cluster.url);
const onSingle = connectOnlineRedis(REDIS_URL);
for (const c of [onCluster.client, onSingle.client])
  if (c.status !== "ready") await new Promise((resolve) => c.once("ready", resolve));
try {
  const c = onCluster.client as import("ioredis").Cluster;
  c.defineCommand("benchReadGroups", { lua: READ_GROUPS, numberOfKeys: 1, readOnly: true });
  c.defineCommand("benchReadAcross", { lua: READ_ACROSS_SLOTS, numberOfKeys: 1, readOnly: true });
  const masters = new Map(c.nodes("master").map((n) => [`${n.options.host}:${n.options.port}`, n]));
  const tagsOf = new Map(BUCKETS.map((b) => [b, bucketTags(b)]));
  log(`writing ${ENTITIES} entities × ${VIEWS} views, per-entity slots and B = ${BUCKETS.join(", ")}…`);
  const put = async (
    keyOf: (i: number, v: number) => string,
    kvs: { putIfNewer: typeof onCluster.kv.putIfNewer }[],
  ) => {
    for (let v = 0; v < VIEWS; v++)
      for (let s = 0; s < ENTITIES; s += 1000) {
        const entries = Array.from({ length: 1000 }, (_, k) => ({
          key: keyOf(s + k, v),
          value: value(s + k),
          eventTs: 1,
          createdTs: 0,
          layout: "abcdef12",
          expireAtMs: null,
        }));
        await Promise.all(kvs.map((kv) => kv.putIfNewer(entries)));
      }
  };
  await put(key, [onCluster.kv, onSingle.kv]);
  await put(entityKey, [onCluster.kv]);
  for (const tags of tagsOf.values()) await put((i, v) => bucketKey(tags, i, v), [onCluster.kv]);
  for (const [b, tags] of tagsOf) {
    const perNode = new Map<string, number>();
    for (const t of tags) {
      const node = c.slots[keySlot(`{${t}}`)]![0]!;
      perNode.set(node, (perNode.get(node) ?? 0) + 1);
    }
    log(`B=${b}: buckets per master ${[...perNode.values()].join("/")}`);
  }

  /** Positions of `keys` grouped by master, then by slot (the ways below that send one command per slot). */
  const positionsByNodeAndSlot = (keys: string[]): Map<string, Map<number, number[]>> => {
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
    return byNode;
  };

  /** The bucket layout's read of one coalesced key list: per master one script, per slot one MGET in it. */
  const groupedRead = async (keys: string[]): Promise<(Buffer | null | Error)[]> => {
    const out: (Buffer | null | Error)[] = new Array(keys.length);
    const byNode = positionsByNodeAndSlot(keys);
    await Promise.all(
      [...byNode.values()].map(async (slots) => {
        const args: string[] = [String(slots.size)];
        for (const at of slots.values()) args.push(String(at.length));
        for (const at of slots.values()) for (const i of at) args.push(keys[i]!);
        // biome-ignore lint/suspicious/noExplicitAny: made by defineCommand
        const res = (await (c as any).benchReadGroupsBuffer(args[slots.size + 1], ...args)) as Buffer[][];
        let g = 0;
        for (const at of slots.values()) {
          const values = res[g++]!;
          for (let j = 0; j < at.length; j++) out[at[j]!] = values[j] ?? null;
        }
      }),
    );
    return out;
  };
  const grouped = new ReadsPerTurn(groupedRead, true);

  /** Before slot buckets: per master one script of GETs. */
  const entityRead = async (keys: string[]): Promise<(Buffer | null | Error)[]> => {
    const out: (Buffer | null | Error)[] = new Array(keys.length);
    const byNode = new Map<string, number[]>();
    for (let i = 0; i < keys.length; i++) {
      const node = c.slots[keySlot(keys[i]!)]![0]!;
      const at = byNode.get(node);
      if (at) at.push(i);
      else byNode.set(node, [i]);
    }
    await Promise.all(
      [...byNode.values()].map(async (at) => {
        const ks = at.map((i) => keys[i]!);
        // biome-ignore lint/suspicious/noExplicitAny: made by defineCommand
        const values = (await (c as any).benchReadAcrossBuffer(ks[0], ...ks)) as Buffer[];
        for (let j = 0; j < at.length; j++) out[at[j]!] = values[j] ?? null;
      }),
    );
    return out;
  };
  const entityReads = new ReadsPerTurn(entityRead, true);

  /** The same grouping, but per master one pipeline of native MGETs, one per slot (one round trip per master). */
  const pipelinedRead = async (keys: string[]): Promise<(Buffer | null | Error)[]> => {
    const out: (Buffer | null | Error)[] = new Array(keys.length);
    const byNode = positionsByNodeAndSlot(keys);
    await Promise.all(
      [...byNode].map(async ([node, slots]) => {
        const p = masters.get(node)!.pipeline();
        for (const at of slots.values()) {
          const ks = new Array<string>(at.length);
          for (let j = 0; j < at.length; j++) ks[j] = keys[at[j]!]!;
          p.mgetBuffer(ks);
        }
        const res = (await p.exec())!;
        let g = 0;
        for (const at of slots.values()) {
          const [err, values] = res[g++]!;
          if (err) throw err;
          for (let j = 0; j < at.length; j++) out[at[j]!] = (values as Buffer[])[j] ?? null;
        }
      }),
    );
    return out;
  };
  const pipelined = new ReadsPerTurn(pipelinedRead, true);

  type Read = (keys: string[]) => Promise<unknown[]>;
  const ways: [string, Read, number[], (i: number, v: number) => string][] = [
    ["single", (keys) => onSingle.kv.getManyBytes!(keys), [Number(new URL(REDIS_URL).port || 6379)], key],
    ["cluster", (keys) => onCluster.kv.getManyBytes!(keys), cluster.nodes.map((n) => n.port), key],
    ["entity script", (keys) => entityReads.get(keys), cluster.nodes.map((n) => n.port), entityKey],
    ...(process.env.BENCH_NO_SCRIPT ? [] : BUCKETS).map(
      (b): [string, Read, number[], (i: number, v: number) => string] => [
        `bucket ${b} script`,
        (keys) => grouped.get(keys),
        cluster.nodes.map((n) => n.port),
        (i, v) => bucketKey(tagsOf.get(b)!, i, v),
      ],
    ),
    ...BUCKETS.map((b): [string, Read, number[], (i: number, v: number) => string] => [
      `bucket ${b} pipeline`,
      (keys) => pipelined.get(keys),
      cluster.nodes.map((n) => n.port),
      (i, v) => bucketKey(tagsOf.get(b)!, i, v),
    ]),
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
  ])
    for (const concurrency of [1, 16])
      for (let round = 1; round <= 2; round++)
        for (const [name, read, ports, keyOf] of ways) {
          const reads = Array.from({ length: 64 }, (_, b) => {
            const keys: string[] = [];
            for (let v = 0; v < shape.views; v++)
              for (let k = 0; k < 100; k++) keys.push(keyOf((b * 977 + k * 89) % ENTITIES, v));
            return keys;
          });
          const redis0 = await redisCpu(ports);
          const cpu0 = process.cpuUsage();
          const t0 = performance.now();
          const until = t0 + SECONDS * 1000;
          let n = 0;
          await Promise.all(
            Array.from({ length: concurrency }, async () => {
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
            String(concurrency),
            String(round),
            name,
            (n / seconds).toFixed(0),
            ((cpu.user + cpu.system) / n).toFixed(0),
            ((redis * 1e6) / n).toFixed(0),
          ]);
        }
  console.log(
    [
      "",
      `Reads of 100 entities' keys, ${SECONDS}s per way and round; Redis ${(await redisCli(cluster.nodes[0]!.port, ["info", "server"])).match(/redis_version:(\S+)/)?.[1]}.`,
      "",
      ...markdownTable(
        ["lookup", "in flight", "round", "way", "reads/s", "client CPU µs/read", "Redis CPU µs/read"],
        rows,
      ),
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
