import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OnlineFeaturesResponse } from "../src/http/online-schemas.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo" });
});
afterAll(async () => t?.close());

/** Every `larder_online_lookup_status_total` sample as `view/status` → value. */
async function statusCounts(): Promise<Map<string, number>> {
  const text = await (await t.app.request("/metrics")).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^larder_online_lookup_status_total\{(.*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    expect(labels.project).toBe("demo");
    out.set(`${labels.feature_view}/${labels.status}`, Number(m[2]));
  }
  return out;
}

const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

describe("larder_online_lookup_status_total", () => {
  it("counts one per value served (entity row × feature), by view and status, as the answers say", async () => {
    // driver_hourly_stats (ttl 1d): 1 present, 2 with a null acc_rate, 3 a day and a half old; 4 never written
    const w = await t.call("POST", "/write-to-online-store", {
      feature_view_name: "driver_hourly_stats",
      df: {
        driver_id: [1, 2, 3],
        event_timestamp: [iso(60_000), iso(60_000), iso(36 * 3600_000)],
        conv_rate: [0.5, 0.25, 0.75],
        acc_rate: [0.5, null, 0.5],
        avg_daily_trips: [10, 20, 30],
      },
    });
    expect(w.status).toBe(200);
    const before = await statusCounts();
    const requests = [
      {
        features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "customer_profile:current_balance"],
        entities: { driver_id: [1, 2, 3, 4, 2], customer_id: ["x", "y", "z", "w", "v"] },
      },
      { features: ["driver_hourly_stats:acc_rate"], entities: { driver_id: [2] } },
      { feature_service: "driver_activity", entities: { driver_id: [3] } },
      { features: ["driver_hourly_stats_fresh:conv_rate"], entities: { driver_id: [1, 2] } },
    ];
    const served = new Map<string, number>();
    for (const body of requests) {
      const res = await t.app.request("/get-online-features", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      const answer = OnlineFeaturesResponse.parse(await res.json());
      const names = answer.metadata.feature_names;
      const featureRefs =
        "features" in body && body.features
          ? body.features
          : ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"];
      const joinKeys = Object.keys(body.entities).length;
      featureRefs.forEach((ref, i) => {
        const view = ref.split(":")[0]!;
        expect(names[joinKeys + i]).toBe(ref.split(":")[1]);
        for (const status of answer.results[joinKeys + i]!.statuses)
          served.set(`${view}/${status}`, (served.get(`${view}/${status}`) ?? 0) + 1);
      });
    }
    // what the answers hold covers every status, so the comparison below means something
    expect([...served.keys()].sort()).toEqual(
      [
        "customer_profile/NOT_FOUND",
        "driver_hourly_stats/NOT_FOUND",
        "driver_hourly_stats/NULL_VALUE",
        "driver_hourly_stats/OUTSIDE_MAX_AGE",
        "driver_hourly_stats/PRESENT",
        "driver_hourly_stats_fresh/NOT_FOUND",
      ].sort(),
    );
    expect(served.get("driver_hourly_stats/NULL_VALUE")).toBe(3);
    const after = await statusCounts();
    for (const view of ["driver_hourly_stats", "driver_hourly_stats_fresh", "customer_profile"])
      for (const status of ["PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"]) {
        const key = `${view}/${status}`;
        expect({ key, n: (after.get(key) ?? 0) - (before.get(key) ?? 0) }).toEqual({ key, n: served.get(key) ?? 0 });
      }
  });

  it("does not count a lookup that was refused", async () => {
    const before = await statusCounts();
    const res = await t.call("POST", "/get-online-features", {
      features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:nope"],
      entities: { driver_id: [1] },
    });
    expect(res.status).toBe(400);
    expect(await statusCounts()).toEqual(before);
  });
});
