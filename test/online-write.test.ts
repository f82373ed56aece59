import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlineKey } from "../src/online/layout.ts";
import type { CompiledView } from "../src/registry/snapshot.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

const H = 3_600_000_000; // an hour in microseconds
let t: TestContext;
let view: CompiledView;

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo" });
  view = (await t.deps.snapshots.get("demo")).views.get("driver_hourly_stats")!;
});
afterAll(async () => t?.close());

const stored = (id: string) => t.redis.get(onlineKey(t.prefix, "demo", "driver_hourly_stats", `driver_id=${id}`));

describe("online write (Redis)", () => {
  it("stores a row and never replaces it by an older one", async () => {
    const now = Date.now() * 1000;
    expect(await t.online.write(view, [{ key: ["1"], eventTs: now, createdTs: 0, values: [0.5, 0.25, 10] }])).toEqual({
      written: 1,
      skipped: 0,
    });
    expect(await t.online.write(view, [{ key: ["1"], eventTs: now - H, createdTs: 0, values: [0.1, 0.1, 1] }])).toEqual(
      {
        written: 0,
        skipped: 1,
      },
    );
    expect(await stored("1")).toContain("\x1f0.5\x1f0.25\x1f10");
    // same event time: the created time breaks the tie; equal pairs overwrite (re-runs are idempotent)
    await t.online.write(view, [{ key: ["1"], eventTs: now, createdTs: 5, values: [0.6, 0.6, 6] }]);
    expect(await t.online.write(view, [{ key: ["1"], eventTs: now, createdTs: 4, values: [0.7, 0.7, 7] }])).toEqual({
      written: 0,
      skipped: 1,
    });
    expect(await t.online.write(view, [{ key: ["1"], eventTs: now, createdTs: 5, values: [0.8, 0.8, 8] }])).toEqual({
      written: 1,
      skipped: 0,
    });
    expect(await stored("1")).toContain("\x1f0.8\x1f0.8\x1f8");
  });

  it("keeps the newest of rows for one key within one batch, whatever their order", async () => {
    const now = Date.now() * 1000;
    const res = await t.online.write(view, [
      { key: ["2"], eventTs: now - 2 * H, createdTs: 0, values: [2, 2, 2] },
      { key: ["2"], eventTs: now, createdTs: 0, values: [3, 3, 3] },
      { key: ["2"], eventTs: now - H, createdTs: 0, values: [1, 1, 1] },
    ]);
    expect(res).toEqual({ written: 2, skipped: 1 });
    expect((await stored("2"))?.endsWith("\x1f3\x1f3\x1f3")).toBe(true);
  });

  it("keeps the newest under concurrent writers", async () => {
    const now = Date.now() * 1000;
    const order = Array.from({ length: 40 }, (_, i) => i).sort(() => Math.random() - 0.5);
    await Promise.all(
      order.map((i) =>
        t.online.write(view, [{ key: ["3"], eventTs: now - (40 - i) * 1000, createdTs: 0, values: [i, i, i] }]),
      ),
    );
    expect((await stored("3"))?.endsWith("\x1f39\x1f39\x1f39")).toBe(true);
  });

  it("sets an expiry past ttl, also for an old row written now", async () => {
    const nowMs = Date.now();
    await t.online.write(view, [{ key: ["4"], eventTs: nowMs * 1000, createdTs: 0, values: [1, 1, 1] }]);
    await t.online.write(view, [{ key: ["5"], eventTs: Date.UTC(2021, 0, 1) * 1000, createdTs: 0, values: [1, 1, 1] }]);
    const k4 = onlineKey(t.prefix, "demo", "driver_hourly_stats", "driver_id=4");
    const k5 = onlineKey(t.prefix, "demo", "driver_hourly_stats", "driver_id=5");
    const day = 86_400_000;
    const pttl4 = await t.redis.pttl(k4);
    expect(pttl4).toBeGreaterThan(day); // ttl 1d + margin
    expect(pttl4).toBeLessThanOrEqual(2 * day);
    const pttl5 = await t.redis.pttl(k5);
    expect(pttl5).toBeGreaterThan(0);
    expect(pttl5).toBeLessThanOrEqual(day + 1000);
  });

  it("a row of an older schema of the view is replaced whatever its time", async () => {
    const k = onlineKey(t.prefix, "demo", "driver_hourly_stats", "driver_id=6");
    const future = (Date.now() + 3_600_000) * 1000;
    await t.redis.set(k, `${future}\x1f0\x1fdeadbeef\x1f"x"\x1f1\x1f2`);
    expect(
      await t.online.write(view, [{ key: ["6"], eventTs: Date.now() * 1000, createdTs: 0, values: [1, 2, 3] }]),
    ).toEqual({
      written: 1,
      skipped: 0,
    });
  });
});
