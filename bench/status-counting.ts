/**
 * What larder_online_lookup_status_total costs a lookup: the same lookups with and without the status counting,
 * alternating in slices within one process so that load from elsewhere on a shared machine falls on both alike.
 * Two stores: the real one over Redis, and the same store over the same stored bytes kept in memory (the lookup's own
 * CPU work, where the counting's cost shows most: no round trip to hide it). Prints lookups/s and the ratio.
 *
 *   npx tsx bench/status-counting.ts        (BENCH_SECONDS per shape, default 20; slices of 250 ms)
 */
import { createMetrics } from "../src/http/metrics.ts";
import type { OnlineKv } from "../src/online/kv.ts";
import { KvOnlineStore } from "../src/online/service.ts";
import type { OnlineReadOptions } from "../src/online/store.ts";
import { createTestContext } from "../test/support/app.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const SLICE_MS = 250;
const t = await createTestContext({ applyExampleTo: "b", defaultProject: "b" });
try {
  const snap = await t.deps.snapshots.getExisting("b");
  const now = new Date().toISOString();
  const ids = Array.from({ length: 1000 }, (_, i) => 5000 + i);
  const res = await t.call("POST", "/v1/projects/b/write-to-online-store", {
    feature_view_name: "driver_hourly_stats",
    df: {
      driver_id: ids,
      event_timestamp: ids.map(() => now),
      conv_rate: ids.map((i) => (i % 7 === 0 ? null : (i % 100) / 100)),
      acc_rate: ids.map(() => 0.5),
      avg_daily_trips: ids.map((i) => i),
    },
  });
  if (res.status !== 200) throw new Error(JSON.stringify(res.body));
  const metrics = createMetrics();
  const plain: OnlineReadOptions = { maxEntityRows: 1000, onStatuses: undefined };
  const counting: OnlineReadOptions = { maxEntityRows: 1000, onStatuses: metrics.lookupStatuses };
  // the stored rows, read once, then answered from memory
  const stored = new Map<string, Buffer>();
  const kvRedis = t.online.kv;
  const memory: OnlineKv = {
    getMany: () => Promise.reject(new Error("unused")),
    getManyBytes: async (keys) => {
      const missing = keys.filter((k) => !stored.has(k));
      if (missing.length) {
        const got = await kvRedis.getManyBytes!(missing);
        missing.forEach((k, j) => {
          if (got[j]) stored.set(k, got[j]!);
        });
      }
      return keys.map((k) => stored.get(k) ?? null);
    },
    putIfNewer: () => Promise.reject(new Error("unused")),
    ping: async () => {},
    close: async () => {},
  };
  const stores = [
    { name: "redis", store: t.online },
    { name: "memory", store: new KvOnlineStore(memory, t.prefix) },
  ];
  const shapes = [
    { name: "1×3", rows: 1 },
    { name: "100×3", rows: 100 },
  ];
  const features = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
  ];
  console.log("store   shape   without counting (lookups/s)   with counting (lookups/s)   ratio with/without");
  for (const { name: storeName, store } of stores)
    for (const shape of shapes) {
      const done = [0, 0];
      const time = [0, 0];
      let i = 0;
      const end = Date.now() + SECONDS * 1000;
      for (let slice = 0; Date.now() < end; slice++) {
        const which = slice % 2;
        const opts = which ? counting : plain;
        const t0 = performance.now();
        while (performance.now() - t0 < SLICE_MS) {
          const entities = { driver_id: Array.from({ length: shape.rows }, () => ids[i++ % ids.length]) };
          // 8 lookups in flight, as a busy server has
          await Promise.all(
            Array.from({ length: 8 }, () => store.getOnlineFeaturesBytes!(snap, { features, entities }, opts)),
          );
          done[which]! += 8;
        }
        time[which]! += performance.now() - t0;
      }
      const rate = (w: number) => (done[w]! / time[w]!) * 1000;
      console.log(
        `${storeName.padEnd(7)} ${shape.name.padEnd(7)} ${rate(0).toFixed(0).padStart(28)} ${rate(1).toFixed(0).padStart(27)} ${(rate(1) / rate(0)).toFixed(3).padStart(22)}`,
      );
    }
} finally {
  await t.close();
}
