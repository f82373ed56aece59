/**
 * How long the online store takes to answer again after its master is SIGKILLed (a tool, not a benchmark of record).
 *
 *   npx tsx bench/failover.ts sentinel|cluster [runs=2]       (through /work/bin/run-bench on a shared machine)
 *
 * Starts a throw-away Sentinel set-up (1 master, 1 replica, 3 sentinels) or Redis Cluster (3 masters + 3 replicas) as
 * the tests do (`down-after-milliseconds` / `cluster-node-timeout` 1000), connects the online store's own connection
 * (connectOnlineRedis), reads one key every 20 ms, kills the master that serves it, and prints when Redis promoted the
 * replica (every sentinel names it; the cluster lists three live masters without the victim), when the first read
 * succeeded again, and the connection's events after the kill.
 */
import calculateSlot from "cluster-key-slot";
import type { Cluster } from "ioredis";
import { connectOnlineRedis } from "../src/online/redis-store.ts";
import {
  type ClusterTopology,
  type RedisNode,
  type SentinelTopology,
  startRedisCluster,
  startRedisSentinel,
} from "../test/support/redis-topology.ts";

const mode = process.argv[2] === "cluster" ? "cluster" : "sentinel";
const runs = Number(process.argv[3] ?? 2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (let run = 1; run <= runs; run++) {
  const topo: SentinelTopology | ClusterTopology =
    mode === "sentinel" ? await startRedisSentinel() : await startRedisCluster();
  const r = connectOnlineRedis(topo.url, {});
  if (r.client.status !== "ready") await new Promise((resolve) => r.client.once("ready", resolve));
  const key = "larder_failover:{a}:v";
  await r.kv.putIfNewer([
    { key, value: '1\x1f0\x1fl\x1f"t"\x1f1', eventTs: 1, createdTs: 0, layout: "l", expireAtMs: null },
  ]);
  const events: [number, string][] = [];
  for (const ev of ["close", "reconnecting", "connect", "ready", "+node", "-node"])
    r.client.on(ev, (x: unknown) => events.push([Date.now(), `${ev}${typeof x === "number" ? ` ${x}` : ""}`]));
  let failed = 0;
  let lastError = "";
  let killedAt = 0;
  let backAt = 0;
  let stop = false;
  const reads = (async () => {
    while (!stop) {
      try {
        await r.kv.getMany([key]);
        if (killedAt && failed > 0 && !backAt) backAt = Date.now();
      } catch (e) {
        failed++;
        lastError = (e as Error).message;
      }
      await sleep(20);
    }
  })();
  await sleep(1000);
  let victim: RedisNode;
  if (mode === "sentinel") victim = (topo as SentinelTopology).master;
  else {
    const address = (r.client as Cluster).slots[calculateSlot(key)]![0]!;
    victim = topo.nodes.find((n) => n.address === address)!;
  }
  killedAt = Date.now();
  victim.kill();
  let promotedAt = 0;
  while (!backAt && Date.now() - killedAt < 120_000) {
    if (!promotedAt)
      try {
        const promoted =
          mode === "sentinel"
            ? (await (topo as SentinelTopology).mastersSeen()).every(
                (m) => m === (topo as SentinelTopology).replica.address,
              )
            : await (topo as ClusterTopology).masters().then((m) => m.length === 3 && !m.includes(victim.address));
        if (promoted) promotedAt = Date.now();
      } catch {}
    await sleep(50);
  }
  stop = true;
  await reads;
  console.log(
    `${mode} run ${run}: promoted +${promotedAt - killedAt} ms after the kill, first read again +${backAt - killedAt} ms ` +
      `(${backAt - promotedAt} ms after the promotion); ${failed} reads failed, the last with: ${lastError}`,
  );
  console.log(
    `  events: ${events
      .filter(([t]) => t >= killedAt)
      .map(([t, e]) => `+${t - killedAt} ${e}`)
      .join(", ")}`,
  );
  await r.kv.close();
  await topo.stop();
}
process.exit(0);
