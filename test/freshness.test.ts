import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { ErrorBody } from "../src/http/errors.ts";
import { createMetrics } from "../src/http/metrics.ts";
import { Freshness } from "../src/http/quality-schemas.ts";
import { rowsOf } from "../src/offline/sql.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo" });
});
afterAll(async () => t?.close());

const path = (view: string) => `/v1/projects/demo/feature-views/${view}/freshness`;
async function freshness(view: string, app = t.app): Promise<Freshness> {
  const res = await app.request(path(view));
  expect(res.status).toBe(200);
  return Freshness.parse(await res.json());
}
const hourAgo = (h: number) => new Date(Math.floor(Date.now() / 3600_000) * 3600_000 - h * 3600_000);

async function gauge(name: string, view: string): Promise<number | undefined> {
  const text = await (await t.app.request("/metrics")).text();
  const m = new RegExp(`^${name}\\{project="demo",feature_view="${view}"\\} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

describe("GET …/feature-views/{name}/freshness", () => {
  it("is all null (lag too) for a view never materialised nor pushed, but for what the source holds", async () => {
    const f = await freshness("customer_profile");
    const newest = rowsOf<{ ts: Date }>(
      await t.deps.db.execute(sql`SELECT max(event_timestamp) AS ts FROM public.customer_profile`),
    )[0]!.ts;
    expect(f).toEqual({
      last_materialized_end: null,
      last_push_event_timestamp: null,
      newest_offline_event_timestamp: new Date(newest).toISOString().replace(".000Z", "Z"),
      lag_seconds: null,
    });
  });

  it("after a materialisation: its window's end, and the lag from it", async () => {
    const end = hourAgo(1);
    const res = await t.call("POST", "/v1/projects/demo/materialize", {
      start_ts: hourAgo(30).toISOString(),
      end_ts: end.toISOString(),
      feature_views: ["driver_hourly_stats"],
    });
    expect(res.status).toBe(200);
    const f = await freshness("driver_hourly_stats");
    expect(f.last_materialized_end).toBe(end.toISOString().replace(".000Z", "Z"));
    expect(f.last_push_event_timestamp).toBeNull();
    const lag = (Date.now() - end.getTime()) / 1000;
    expect(f.lag_seconds).toBeGreaterThan(lag - 5);
    expect(f.lag_seconds).toBeLessThanOrEqual(lag + 0.01);
    // data.sql's newest row is at the top of the current hour
    expect(f.newest_offline_event_timestamp).toBe(hourAgo(0).toISOString().replace(".000Z", "Z"));
    expect(await gauge("larder_feature_view_last_materialized_timestamp_seconds", "driver_hourly_stats")).toBe(
      end.getTime() / 1000,
    );
  });

  it("after pushes: the newest event time pushed (an older push does not move it back), and the lag from it", async () => {
    const pushAt = (ts: Date, to = "online") =>
      t.call("POST", "/push", {
        push_source_name: "driver_stats_push",
        to,
        df: {
          driver_id: [7001, 7002],
          event_timestamp: [ts.toISOString(), hourAgo(5).toISOString()],
          conv_rate: [0.5, 0.5],
          acc_rate: [0.1, 0.1],
        },
      });
    const newest = new Date(Date.now() - 90_000);
    expect((await pushAt(newest)).status).toBe(200);
    expect((await pushAt(hourAgo(3))).status).toBe(200);
    const f = await freshness("driver_hourly_stats_fresh");
    // compared as instants: a whole second is written without its ".000"
    expect(Date.parse(f.last_push_event_timestamp!)).toBe(newest.getTime());
    expect(f.last_materialized_end).toBeNull();
    expect(f.lag_seconds).toBeGreaterThanOrEqual(90);
    expect(f.lag_seconds).toBeLessThan(120);
    expect(await gauge("larder_feature_view_last_push_timestamp_seconds", "driver_hourly_stats_fresh")).toBe(
      newest.getTime() / 1000,
    );
    // the same view by materialisation too: lag is from the later of the two
    await t.call("POST", "/v1/projects/demo/materialize", {
      start_ts: hourAgo(30).toISOString(),
      end_ts: hourAgo(2).toISOString(),
      feature_views: ["driver_hourly_stats_fresh"],
    });
    const g = await freshness("driver_hourly_stats_fresh");
    expect(g.last_materialized_end).toBe(hourAgo(2).toISOString().replace(".000Z", "Z"));
    expect(g.lag_seconds).toBeLessThan(120);
    // an offline-only push does not make the online store fresher
    const later = new Date(Date.now() - 10_000);
    expect((await pushAt(later, "offline")).status).toBe(200);
    expect((await freshness("driver_hourly_stats_fresh")).last_push_event_timestamp).toBe(g.last_push_event_timestamp);
  });

  it("is kept outside the server: a new app over the same stores answers the same", async () => {
    const before = await freshness("driver_hourly_stats_fresh");
    const other = createApp({ ...t.deps, metrics: createMetrics() });
    const after = await freshness("driver_hourly_stats_fresh", other);
    expect(after.last_push_event_timestamp).toBe(before.last_push_event_timestamp);
    expect(after.last_materialized_end).toBe(before.last_materialized_end);
  });

  it("404 for an unknown view or project", async () => {
    for (const p of [path("nope"), "/v1/projects/nope/feature-views/driver_hourly_stats/freshness"]) {
      const res = await t.app.request(p);
      expect(res.status).toBe(404);
      ErrorBody.parse(await res.json());
    }
  });
});
