import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./support/app.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo" });
});
afterAll(async () => t?.close());

async function scrape(): Promise<string> {
  const res = await t.app.request("/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return res.text();
}

/** The value of one sample, e.g. `sample(text, 'larder_http_requests_total{method="GET",…}')`; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return 0;
}

describe("GET /metrics", () => {
  it("counts requests by route pattern (not raw path) and status, with a latency histogram", async () => {
    const route = "/v1/projects/:project/feature-views/:name";
    const before = await scrape();
    const base200 = sample(before, "larder_http_requests_total", { method: "GET", route, status: "200" });
    const base404 = sample(before, "larder_http_requests_total", { method: "GET", route, status: "404" });
    for (let i = 0; i < 3; i++)
      expect((await t.call("GET", "/v1/projects/demo/feature-views/driver_hourly_stats")).status).toBe(200);
    expect((await t.call("GET", "/v1/projects/demo/feature-views/nope")).status).toBe(404);
    expect((await t.call("GET", "/no/such/route")).status).toBe(404);
    const after = await scrape();
    expect(sample(after, "larder_http_requests_total", { method: "GET", route, status: "200" })).toBe(base200 + 3);
    expect(sample(after, "larder_http_requests_total", { method: "GET", route, status: "404" })).toBe(base404 + 1);
    expect(sample(after, "larder_http_requests_total", { route: "unmatched", status: "404" })).toBeGreaterThanOrEqual(
      1,
    );
    expect(after).not.toContain('driver_hourly_stats"');
    expect(after).not.toContain("/no/such/route");
    expect(sample(after, "larder_http_request_duration_seconds_count", { method: "GET", route, status: "200" })).toBe(
      base200 + 3,
    );
    expect(
      sample(after, "larder_http_request_duration_seconds_bucket", { method: "GET", route, status: "200", le: "+Inf" }),
    ).toBe(base200 + 3);
  });

  it("reports the registry snapshot's age", async () => {
    const text = await scrape();
    expect(text).toContain("# TYPE larder_registry_snapshot_age_seconds gauge");
    const age = sample(text, "larder_registry_snapshot_age_seconds");
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(600);
  });

  it("exposes what the routes report: entities and features served, online store errors, materialisation", async () => {
    const m = t.deps.metrics!;
    m.served("demo", 4, 3);
    m.onlineError("read");
    m.materialized({
      project: "demo",
      featureView: "v",
      status: "succeeded",
      rowsRead: 10,
      rowsWritten: 7,
      durationMs: 1500,
    });
    const text = await scrape();
    expect(sample(text, "larder_online_entities_served_total", { project: "demo" })).toBeGreaterThanOrEqual(4);
    expect(sample(text, "larder_online_features_served_total", { project: "demo" })).toBeGreaterThanOrEqual(12);
    expect(sample(text, "larder_online_store_errors_total", { operation: "read" })).toBe(1);
    expect(sample(text, "larder_materialization_rows_total", { feature_view: "v", kind: "read" })).toBe(10);
    expect(sample(text, "larder_materialization_rows_total", { feature_view: "v", kind: "written" })).toBe(7);
    expect(
      sample(text, "larder_materialization_job_duration_seconds_sum", { feature_view: "v", status: "succeeded" }),
    ).toBe(1.5);
  });

  it("counts the entity rows and feature values real lookups answer", async () => {
    const before = await scrape();
    const e0 = sample(before, "larder_online_entities_served_total", { project: "demo" });
    const f0 = sample(before, "larder_online_features_served_total", { project: "demo" });
    const res = await t.call("POST", "/get-online-features", {
      features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
      entities: { driver_id: [1001, 1002, 9999] },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const svc = await t.call("POST", "/v1/projects/demo/online-features", {
      feature_service: "driver_activity",
      entities: { driver_id: [1001] },
    });
    expect(svc.status, JSON.stringify(svc.body)).toBe(200);
    const bad = await t.call("POST", "/get-online-features", { features: ["nope:x"], entities: { driver_id: [1] } });
    expect(bad.status).toBe(400);
    const after = await scrape();
    expect(sample(after, "larder_online_entities_served_total", { project: "demo" })).toBe(e0 + 4);
    expect(sample(after, "larder_online_features_served_total", { project: "demo" })).toBe(f0 + 3 * 2 + 1 * 2);
    // bad input is the caller's error, not the store's
    expect(sample(after, "larder_online_store_errors_total", { operation: "read" })).toBe(
      sample(before, "larder_online_store_errors_total", { operation: "read" }),
    );
  });

  it("counts a real materialisation's rows and duration", async () => {
    const res = await t.call("POST", "/v1/projects/demo/materialize", {
      start_ts: "2000-01-01T00:00:00Z",
      end_ts: "2100-01-01T00:00:00Z",
      feature_views: ["driver_hourly_stats"],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const job = res.body.jobs[0];
    const text = await scrape();
    const labels = { project: "demo", feature_view: "driver_hourly_stats" };
    expect(sample(text, "larder_materialization_rows_total", { ...labels, kind: "read" })).toBe(job.rows_read);
    expect(sample(text, "larder_materialization_rows_total", { ...labels, kind: "written" })).toBe(job.rows_written);
    expect(job.rows_read).toBeGreaterThan(0);
    expect(sample(text, "larder_materialization_job_duration_seconds_count", { ...labels, status: "succeeded" })).toBe(
      1,
    );
  });

  it("keeps apps apart: each app has a registry of its own", async () => {
    const other = await createTestContext({});
    try {
      await other.call("GET", "/v1/projects");
      const text = await (await other.app.request("/metrics")).text();
      expect(sample(text, "larder_http_requests_total", { route: "/v1/projects", status: "200" })).toBe(1);
      expect(sample(text, "larder_online_entities_served_total", { project: "demo" })).toBe(0);
    } finally {
      await other.close();
    }
  });
});

describe("request ids in process (app.request, no Node response to set them on)", () => {
  it("answers, errors included, carry x-request-id: the client's when sane, else a new one", async () => {
    const ok = await t.app.request("/health/live", { headers: { "x-request-id": "abc-123" } });
    expect(ok.headers.get("x-request-id")).toBe("abc-123");
    const lookup = await t.app.request("/get-online-features", {
      method: "POST",
      body: JSON.stringify({ features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001] } }),
      headers: { "x-request-id": "not ok!" },
    });
    expect(lookup.status).toBe(200);
    expect(lookup.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const bad = await t.app.request("/get-online-features", { method: "POST", body: "{" });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("health", () => {
  it("/health/live answers 200 while the process runs; /health is readiness", async () => {
    const live = await t.call("GET", "/health/live");
    expect(live).toEqual({ status: 200, body: { status: "ok" } });
    const ready = await t.call("GET", "/health");
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe("ok");
  });
});
