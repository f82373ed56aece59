import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody } from "../src/http/errors.ts";
import { OnlineFeaturesResponse } from "../src/http/online-schemas.ts";
import type { CompiledView } from "../src/registry/snapshot.ts";
import { applyOnlineFixtures, iso } from "./online-fixtures.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

const EPOCH = "1970-01-01T00:00:00Z";
let t: TestContext;
let hourly: CompiledView;
const nowMs = Math.floor(Date.now() / 1000) * 1000;
const recent = nowMs - 3_600_000; // an hour ago: inside every ttl of the example

async function lookup(body: unknown, path = "/get-online-features") {
  const res = await t.call("POST", path, body);
  if (res.status === 200) return { status: 200, body: OnlineFeaturesResponse.parse(res.body) };
  // biome-ignore lint/suspicious/noExplicitAny: either body shape, checked by its schema
  return { status: res.status, body: ErrorBody.parse(res.body) as any };
}

async function ok(body: unknown, path?: string) {
  const res = await lookup(body, path);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as ReturnType<typeof OnlineFeaturesResponse.parse>;
}

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo", maxEntityRows: 50 });
  await applyOnlineFixtures(t);
  const snap = await t.deps.snapshots.get("demo");
  hourly = snap.views.get("driver_hourly_stats")!;
  await t.online.write(hourly, [
    { key: ["1001"], eventTs: recent * 1000, createdTs: 0, values: [0.7037, 0.25, 308] },
    { key: ["1003"], eventTs: recent * 1000, createdTs: 0, values: [null, 0.5, 12] },
    // two days old: past the view's ttl of 1d
    { key: ["1004"], eventTs: (nowMs - 2 * 86_400_000) * 1000, createdTs: 0, values: [0.1, 0.2, 3] },
    { key: ["9007199254740993"], eventTs: recent * 1000, createdTs: 0, values: [0.9, 0.9, "9007199254740993"] },
  ]);
  await t.online.write(snap.views.get("driver_hourly_stats_fresh")!, [
    { key: ["1001"], eventTs: recent * 1000, createdTs: 0, values: [0.11, 0.22] },
  ]);
  await t.online.write(snap.views.get("customer_profile")!, [
    { key: ["C100"], eventTs: recent * 1000, createdTs: 0, values: [120.5, 1.5, 42] },
  ]);
});
afterAll(async () => t?.close());

describe("POST /get-online-features", () => {
  it("answers in Feast's column-oriented shape, join keys first", async () => {
    const body = await ok({
      features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
      entities: { driver_id: [1001, 1002] },
      full_feature_names: false,
    });
    expect(body).toEqual({
      metadata: { feature_names: ["driver_id", "conv_rate", "avg_daily_trips"] },
      results: [
        { values: [1001, 1002], statuses: ["PRESENT", "PRESENT"], event_timestamps: [EPOCH, EPOCH] },
        { values: [0.7037, null], statuses: ["PRESENT", "NOT_FOUND"], event_timestamps: [iso(recent), EPOCH] },
        { values: [308, null], statuses: ["PRESENT", "NOT_FOUND"], event_timestamps: [iso(recent), EPOCH] },
      ],
    });
  });

  it("serves a feature service, in the service's order", async () => {
    const body = await ok({
      feature_service: "driver_activity",
      entities: { driver_id: [1001] },
      allow_registry_cache: true,
    });
    expect(body.metadata.feature_names).toEqual(["driver_id", "conv_rate", "avg_daily_trips"]);
    expect(body.results.map((r) => r.values[0])).toEqual([1001, 0.7037, 308]);
  });

  it("names features view__feature with full_feature_names, which also resolves collisions", async () => {
    const features = ["driver_hourly_stats:conv_rate", "driver_hourly_stats_fresh:conv_rate"];
    const body = await ok({ features, entities: { driver_id: [1001] }, full_feature_names: true });
    expect(body.metadata.feature_names).toEqual([
      "driver_id",
      "driver_hourly_stats__conv_rate",
      "driver_hourly_stats_fresh__conv_rate",
    ]);
    expect(body.results[2]!.values).toEqual([0.11]);
    const clash = await lookup({ features, entities: { driver_id: [1001] } });
    expect(clash.status).toBe(400);
    expect(clash.body.error.message).toMatch(/collision.*conv_rate.*full_feature_names/);
  });

  it('normalises keys by value type: 1001 and "1001" are the same row, and answered as numbers', async () => {
    const body = await ok({
      features: ["driver_hourly_stats:avg_daily_trips"],
      entities: { driver_id: ["1001", 1001, " 1001"] },
    });
    expect(body.results[0]!.values).toEqual([1001, 1001, 1001]);
    expect(body.results[1]!.values).toEqual([308, 308, 308]);
    expect(body.results[1]!.statuses).toEqual(["PRESENT", "PRESENT", "PRESENT"]);
  });

  it("takes int64 keys beyond 2^53 as decimal strings and answers them (and int64 values) as strings", async () => {
    const body = await ok({
      features: ["driver_hourly_stats:avg_daily_trips"],
      entities: { driver_id: ["9007199254740993"] },
    });
    expect(body.results[0]!.values).toEqual(["9007199254740993"]);
    expect(body.results[1]!.values).toEqual(["9007199254740993"]);
    // raw text: a JS number literal could not even hold 2^53+1
    const unsafe = await t.call(
      "POST",
      "/get-online-features",
      '{"features":["driver_hourly_stats:avg_daily_trips"],"entities":{"driver_id":[9007199254740993]}}',
    );
    expect(unsafe.status).toBe(400);
    expect(unsafe.body.error.message).toMatch(/entities\.driver_id\[0\].*not a safe integer/);
  });

  it("answers NULL_VALUE for a stored null and OUTSIDE_MAX_AGE (value null) past ttl", async () => {
    const body = await ok({ features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1003, 1004] } });
    expect(body.results[1]).toEqual({
      values: [null, null],
      statuses: ["NULL_VALUE", "OUTSIDE_MAX_AGE"],
      event_timestamps: [iso(recent), iso(nowMs - 2 * 86_400_000)],
    });
  });

  it("enforces ttl against the request time, boundary included; ttl 0 is never stale", async () => {
    const snap = await t.deps.snapshots.get("demo");
    const short = snap.views.get("typed_short")!; // ttl 60s
    const at = Date.UTC(2030, 0, 1);
    await t.online.write(short, [
      { key: ["7001"], eventTs: (at - 60_000) * 1000, createdTs: 0, values: [1, "edge"] },
      { key: ["7002"], eventTs: (at - 60_000) * 1000 - 1, createdTs: 0, values: [2, "past"] },
    ]);
    const text = await t.online.getOnlineFeatures(
      snap,
      { features: ["typed_short:s"], entities: { driver_id: [7001, 7002] } },
      { maxEntityRows: 10, nowMs: at },
    );
    const body = OnlineFeaturesResponse.parse(JSON.parse(text));
    expect(body.results[1]!.statuses).toEqual(["PRESENT", "OUTSIDE_MAX_AGE"]);
    expect(body.results[1]!.values).toEqual(["edge", null]);
    expect(body.results[1]!.event_timestamps).toEqual(["2029-12-31T23:59:00Z", "2029-12-31T23:58:59.999999Z"]);

    // ttl 0: a value from 2001 is still present
    await t.online.write(snap.views.get("typed")!, [
      {
        key: ["7003"],
        eventTs: Date.UTC(2001, 0, 1) * 1000,
        createdTs: 0,
        values: [1, 1, 1, 1, "old", null, true, null, null, null, null, null],
      },
    ]);
    const old = await ok({ features: ["typed:s"], entities: { driver_id: [7003] } });
    expect(old.results[1]).toEqual({
      values: ["old"],
      statuses: ["PRESENT"],
      event_timestamps: ["2001-01-01T00:00:00Z"],
    });
  });

  it("answers each feature's own statuses when a view's rows mix present, null, stale and missing values", async () => {
    // conv_rate is null for 1003, acc_rate is not: statuses differ by feature, event times are the view's
    const body = await ok({
      features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
      entities: { driver_id: [1001, 1003, 1004, 1002, 1003] },
    });
    const times = [iso(recent), iso(recent), iso(nowMs - 2 * 86_400_000), EPOCH, iso(recent)];
    expect(body.results[1]).toEqual({
      values: [0.7037, null, null, null, null],
      statuses: ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND", "NULL_VALUE"],
      event_timestamps: times,
    });
    expect(body.results[2]).toEqual({
      values: [0.25, 0.5, null, null, 0.5],
      statuses: ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND", "PRESENT"],
      event_timestamps: times,
    });
  });

  it("gives every repeated entity row its own copy", async () => {
    const body = await ok({ features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001, 1002, 1001] } });
    expect(body.results[1]!.values).toEqual([0.7037, null, 0.7037]);
    expect(body.results[1]!.statuses).toEqual(["PRESENT", "NOT_FOUND", "PRESENT"]);
  });

  it("looks up composite keys, with join keys answered in request order", async () => {
    const snap = await t.deps.snapshots.get("demo");
    await t.online.write(snap.views.get("trips")!, [
      { key: ["1001", "C1"], eventTs: recent * 1000, createdTs: 0, values: [5, 4.5] },
      { key: ["1001", "C2"], eventTs: recent * 1000, createdTs: 0, values: [7, 3.25] },
      // a customer id with the characters the key layout escapes
      { key: ["1002", "a,b={x}%"], eventTs: recent * 1000, createdTs: 0, values: [9, 1] },
      { key: ["1002", "a"], eventTs: recent * 1000, createdTs: 0, values: [10, 2] },
    ]);
    const body = await ok({
      features: ["trips:trips", "trips:rating"],
      entities: { customer_id: ["C2", "C1", "C1", "a,b={x}%", "a"], driver_id: [1001, 1001, 1002, 1002, 1002] },
    });
    expect(body.metadata.feature_names).toEqual(["customer_id", "driver_id", "trips", "rating"]);
    expect(body.results[0]!.values).toEqual(["C2", "C1", "C1", "a,b={x}%", "a"]);
    expect(body.results[2]!.values).toEqual([7, 5, null, 9, 10]);
    expect(body.results[3]!.values).toEqual([3.25, 4.5, null, 1, 2]);
  });

  it("mixes views of different entities, and a service over several views", async () => {
    const body = await ok({
      feature_service: "driver_and_customer",
      entities: { driver_id: [1001], customer_id: ["C100"] },
      full_feature_names: true,
    });
    expect(body.metadata.feature_names).toEqual([
      "driver_id",
      "customer_id",
      "driver_hourly_stats__conv_rate",
      "driver_hourly_stats__acc_rate",
      "driver_hourly_stats__avg_daily_trips",
      "customer_profile__current_balance",
    ]);
    expect(body.results.map((r) => r.values[0])).toEqual([1001, "C100", 0.7037, 0.25, 308, 120.5]);
  });

  it("answers values typed by dtype: bytes base64, lists, json, unix_timestamp as epoch seconds", async () => {
    const snap = await t.deps.snapshots.get("demo");
    await t.online.write(snap.views.get("typed")!, [
      {
        key: ["8001"],
        eventTs: recent * 1000,
        createdTs: 0,
        values: [
          -5,
          "9223372036854775807",
          1.5,
          2.25,
          'héllo "q" \u0001',
          "AAEC/w==",
          false,
          1735689600,
          { a: [1, null] },
          [0.5, null],
          ["x", ""],
          [1, "9007199254740993"],
        ],
      },
    ]);
    const body = await ok({
      features: [
        "typed:i32",
        "typed:i64",
        "typed:f32",
        "typed:f64",
        "typed:s",
        "typed:b",
        "typed:flag",
        "typed:ts",
        "typed:doc",
        "typed:fl",
        "typed:sl",
        "typed:il",
      ],
      entities: { driver_id: [8001] },
    });
    expect(body.results.slice(1).map((r) => r.values[0])).toEqual([
      -5,
      "9223372036854775807",
      1.5,
      2.25,
      'héllo "q" \u0001',
      "AAEC/w==",
      false,
      1735689600,
      { a: [1, null] },
      [0.5, null],
      ["x", ""],
      [1, "9007199254740993"],
    ]);
    expect(body.results[7]!.statuses).toEqual(["PRESENT"]); // false is a value, not a null
  });

  it("acts on any project under /v1/projects/{project}/online-features", async () => {
    const body = await ok(
      { features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001] } },
      "/v1/projects/demo/online-features",
    );
    expect(body.results[1]!.values).toEqual([0.7037]);
    const other = await lookup(
      { features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001] } },
      "/v1/projects/nothing_here/online-features",
    );
    // a project nothing was ever applied to is an unknown object, as on the registry routes
    expect(other.status).toBe(404);
    expect(other.body.error).toMatchObject({
      code: "not_found",
      message: expect.stringMatching(/project nothing_here/),
    });
  });

  it("answers zero entity rows with empty columns", async () => {
    const body = await ok({ features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [] } });
    expect(body.results).toEqual([
      { values: [], statuses: [], event_timestamps: [] },
      { values: [], statuses: [], event_timestamps: [] },
    ]);
  });
});

describe("bad lookups: 400 naming the problem", () => {
  const F = ["driver_hourly_stats:conv_rate"];
  const cases: [string, unknown, RegExp][] = [
    [
      "unknown view",
      { features: ["nope:conv_rate"], entities: { driver_id: [1] } },
      /features\[0\].*unknown feature view "nope"/,
    ],
    [
      "unknown feature",
      { features: ["driver_hourly_stats:nope"], entities: { driver_id: [1] } },
      /has no feature "nope"/,
    ],
    [
      "not a reference",
      { features: ["conv_rate"], entities: { driver_id: [1] } },
      /"conv_rate" is not a feature reference/,
    ],
    ["unknown service", { feature_service: "nope", entities: { driver_id: [1] } }, /unknown feature service "nope"/],
    [
      "both features and service",
      { features: F, feature_service: "driver_activity", entities: { driver_id: [1] } },
      /either features or feature_service/,
    ],
    ["neither", { entities: { driver_id: [1] } }, /give features/],
    ["empty features", { features: [], entities: { driver_id: [1] } }, /at least one feature/],
    ["missing join key", { features: F, entities: { customer_id: ["C1"] } }, /missing join key "driver_id"/],
    [
      "unknown join key",
      { features: F, entities: { driver_id: [1], rider_id: [2] } },
      /entities\.rider_id.*not the join key/,
    ],
    [
      "different lengths",
      { features: F, entities: { driver_id: [1, 2], customer_id: ["a"] } },
      /entities\.customer_id: has 1 values.*2/,
    ],
    [
      "key of the wrong type",
      { features: F, entities: { driver_id: [1, "abc"] } },
      /entities\.driver_id\[1\]: "abc" is not an integer/,
    ],
    ["fractional key", { features: F, entities: { driver_id: [1.5] } }, /entities\.driver_id\[0\].*1\.5/],
    ["int64 key out of range", { features: F, entities: { driver_id: ["9223372036854775808"] } }, /does not fit int64/],
    ["null key", { features: F, entities: { driver_id: [null] } }, /entities\.driver_id\[0\]: null/],
    ["entities not an object", { features: F, entities: [1, 2] }, /entities/],
    ["entity column not an array", { features: F, entities: { driver_id: 1001 } }, /entities\.driver_id/],
    ["no entities", { features: F }, /entities/],
    ["features not an array", { features: "driver_hourly_stats:conv_rate", entities: { driver_id: [1] } }, /features/],
    [
      "full_feature_names not a boolean",
      { features: F, entities: { driver_id: [1] }, full_feature_names: "yes" },
      /full_feature_names/,
    ],
    ["feature requested twice", { features: [...F, ...F], entities: { driver_id: [1] } }, /requested twice/],
    [
      "too many entity rows",
      { features: F, entities: { driver_id: Array.from({ length: 51 }, (_, i) => i) } },
      /51 entity rows.*limit of 50/,
    ],
    ["offline-only view", { features: ["offline_only:x"], entities: { driver_id: [1] } }, /not served online/],
    ["empty entities", { features: F, entities: {} }, /at least one join key/],
  ];
  for (const [name, body, message] of cases) {
    it(name, async () => {
      const res = await lookup(body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.code).toBe("invalid_argument");
      expect(res.body.error.message).toMatch(message);
    });
  }

  it("refuses a bad list after a good one made of the same text (resolved lists are cached)", async () => {
    const good = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"];
    await ok({ features: good, entities: { driver_id: [1001] } });
    const res = await lookup({ features: [good.join("\n")], entities: { driver_id: [1001] } });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.message).toMatch(/features\[0\]/);
  });

  it("malformed JSON", async () => {
    const res = await t.call("POST", "/get-online-features", "{ not json");
    expect(res.status).toBe(400);
    expect(ErrorBody.parse(res.body).error.message).toMatch(/JSON/i);
  });
});
