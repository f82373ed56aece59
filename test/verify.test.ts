import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody } from "../src/http/errors.ts";
import { Verification } from "../src/http/quality-schemas.ts";
import { sameValue } from "../src/quality/verify.ts";
import { createTestContext, type TestContext } from "./support/app.ts";
import { runCli } from "./support/process.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo" });
  // everything the example holds within the views' ttl, into the online store
  const res = await t.call("POST", "/v1/projects/demo/materialize", {
    start_ts: new Date(Date.now() - 8 * 24 * 3600_000).toISOString(),
    end_ts: new Date(Date.now() + 60_000).toISOString(),
  });
  expect(res.status).toBe(200);
});
afterAll(async () => t?.close());

async function verify(body: unknown): Promise<Verification> {
  const res = await t.call("POST", "/v1/projects/demo/verify", body);
  expect(res.status).toBe(200);
  return Verification.parse(res.body);
}

describe("POST /v1/projects/{p}/verify", () => {
  it("reports every sampled entity matching on a consistent store (all entities when fewer than the sample)", async () => {
    const v = await verify({});
    const byView = Object.fromEntries(v.results.map((r) => [r.feature_view, r]));
    expect(Object.keys(byView).sort()).toEqual([
      "customer_profile",
      "driver_hourly_stats",
      "driver_hourly_stats_fresh",
    ]);
    // 50 drivers with rows within a day; customers with rows within a week
    const customers = (await t.deps.db.execute(
      sql`SELECT count(DISTINCT customer_id)::int AS n FROM public.customer_profile WHERE event_timestamp >= now() - interval '7 days' AND event_timestamp <= now()`,
    )) as unknown as { rows: { n: number }[] };
    expect(byView.driver_hourly_stats).toEqual({
      feature_view: "driver_hourly_stats",
      sampled: 50,
      matching: 50,
      mismatching: 0,
      missing_online: 0,
      examples: [],
    });
    expect(byView.driver_hourly_stats_fresh!.matching).toBe(50);
    expect(byView.customer_profile!.sampled).toBe(customers.rows[0]!.n);
    expect(byView.customer_profile!.matching).toBe(customers.rows[0]!.n);
    for (const r of v.results) expect(r.mismatching + r.missing_online).toBe(0);
  });

  it("finds an offline row changed after materialisation, and an entity the online store never got", async () => {
    await t.deps.db.execute(sql`
      UPDATE public.driver_stats SET conv_rate = conv_rate + 0.5, avg_daily_trips = avg_daily_trips + 1
       WHERE driver_id = 1003 AND event_timestamp = (SELECT max(event_timestamp) FROM public.driver_stats WHERE driver_id = 1003)`);
    await t.deps.db.execute(sql`
      INSERT INTO public.driver_stats (driver_id, event_timestamp, created, conv_rate, acc_rate, avg_daily_trips)
      VALUES (1099, now() - interval '1 minute', now(), 0.25, 0.5, 7)`);
    const v = await verify({ feature_views: ["driver_hourly_stats"], sample: 1000 });
    expect(v.results).toHaveLength(1);
    const r = v.results[0]!;
    expect({ ...r, examples: undefined }).toEqual({
      feature_view: "driver_hourly_stats",
      sampled: 51,
      matching: 49,
      mismatching: 1,
      missing_online: 1,
      examples: undefined,
    });
    const changed = r.examples.find((e) => e.issue === "mismatch")!;
    expect(changed.entity).toEqual({ driver_id: 1003 });
    expect(changed.online_status).toBe("PRESENT");
    expect(changed.differences.map((d) => d.feature)).toEqual(["conv_rate", "avg_daily_trips"]);
    const conv = changed.differences[0]!;
    expect(Math.fround((conv.offline as number) - (conv.online as number))).toBeCloseTo(0.5, 5);
    const missing = r.examples.find((e) => e.issue === "missing_online")!;
    expect(missing).toEqual({
      entity: { driver_id: 1099 },
      issue: "missing_online",
      online_status: "NOT_FOUND",
      differences: [
        { feature: "conv_rate", online: null, offline: 0.25 },
        { feature: "acc_rate", online: null, offline: 0.5 },
        { feature: "avg_daily_trips", online: null, offline: 7 },
      ],
    });
    // a smaller sample: that many entities, each one of the above
    const s = (await verify({ feature_views: ["driver_hourly_stats"], sample: 10 })).results[0]!;
    expect(s.sampled).toBe(10);
    expect(s.matching + s.mismatching + s.missing_online).toBe(10);
  });

  it("larder verify exits 1 beyond --max-mismatch-rate, 0 within it", async () => {
    const env = { DATABASE_URL: t.db.url, REDIS_URL: TEST_REDIS_URL, LARDER_REDIS_PREFIX: t.prefix };
    // generous timeouts: a CLI start is a few seconds, but much longer on a loaded shared machine
    const strict = await runCli(["verify", "-p", "demo", "--views", "driver_hourly_stats"], env, 240_000);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain("driver_hourly_stats: 51 sampled, 49 matching, 1 mismatching, 1 missing online");
    expect(strict.stdout).toContain('{"driver_id":1003} mismatch');
    expect(strict.stderr).toMatch(/driver_hourly_stats: more than 0% of the sampled entities/);
    const lenient = await runCli(
      ["verify", "-p", "demo", "--views", "driver_hourly_stats", "--max-mismatch-rate", "0.05", "--json"],
      env,
      240_000,
    );
    expect(lenient.code).toBe(0);
    expect(Verification.parse(JSON.parse(lenient.stdout)).results[0]!.mismatching).toBe(1);
  }, 600_000);

  it("400 for an unknown or offline view and a bad sample; 404 for an unknown project", async () => {
    for (const body of [{ feature_views: ["nope"] }, { sample: 0 }, { sample: 1.5 }, { sample: "x" }, { other: 1 }]) {
      const res = await t.call("POST", "/v1/projects/demo/verify", body);
      expect(res.status).toBe(400);
      ErrorBody.parse(res.body);
    }
    expect((await t.call("POST", "/v1/projects/nope/verify", {})).status).toBe(404);
  });
});

describe("sameValue", () => {
  it("compares by dtype: float32 as float32, float64 exactly, int64 whether number or text, lists and json", () => {
    expect(sameValue("float32", 0.1, Math.fround(0.1))).toBe(true);
    expect(sameValue("float32", 0.1, 0.1000001)).toBe(false);
    expect(sameValue("float64", 0.1, Math.fround(0.1))).toBe(false);
    expect(sameValue("int64", "9007199254740993", "9007199254740993")).toBe(true);
    expect(sameValue("int64", 5, "5")).toBe(true);
    expect(sameValue("float32[]", [0.1, null], [Math.fround(0.1), null])).toBe(true);
    expect(sameValue("float32[]", [0.1], [0.1, 0.2])).toBe(false);
    expect(sameValue("json", { a: 1, b: [2] }, { b: [2], a: 1 })).toBe(true);
    expect(sameValue("string", null, null)).toBe(true);
    expect(sameValue("string", "a", null)).toBe(false);
  });
});
