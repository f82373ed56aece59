import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody } from "../src/http/errors.ts";
import { OnlineFeaturesResponse, RowsWritten } from "../src/http/online-schemas.ts";
import { push } from "../src/ingest/push.ts";
import type { OnlineStore } from "../src/online/store.ts";
import { applyOnlineFixtures, iso } from "./online-fixtures.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

let t: TestContext;
let client: pg.Client;
const base = Math.floor(Date.now() / 1000) * 1000 - 600_000; // ten minutes ago, whole seconds

async function pushOk(body: unknown, path = "/push") {
  const res = await t.call("POST", path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return RowsWritten.parse(res.body);
}

async function read(features: string[], ids: unknown[], key = "driver_id") {
  const res = await t.call("POST", "/get-online-features", { features, entities: { [key]: ids } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return OnlineFeaturesResponse.parse(res.body);
}

const count = async (table: string, where = "true") =>
  Number((await client.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`)).rows[0].n);

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo" });
  await applyOnlineFixtures(t);
  client = new pg.Client({ connectionString: t.db.url });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
  await t?.close();
});

const fresh = (
  ids: unknown[],
  ts: unknown[],
  conv: unknown[],
  acc: unknown[],
  extra: Record<string, unknown[]> = {},
) => ({
  push_source_name: "driver_stats_push",
  df: { driver_id: ids, event_timestamp: ts, conv_rate: conv, acc_rate: acc, ...extra },
});

describe("POST /push", () => {
  it("writes every view the push source feeds, online by default, not to the batch table", async () => {
    const before = await count("public.typed");
    const res = await pushOk({
      push_source_name: "typed_push",
      df: {
        driver_id: [5001, "5002"],
        event_timestamp: [iso(base), "2024-10-25 16:21:37.123456+00:00"],
        i32: [1, "2"],
        i64: ["9007199254740993", 4],
        f32: ["42.0", 0.5],
        f64: [1e-7, "3"],
        s: ["a", null],
        b: ["AAEC", null],
        flag: [true, false],
        ts: ["2025-01-01T00:00:00Z", 1735689600],
        doc: [{ k: "v" }, [1, 2]],
        fl: [[1.5, 2], null],
        sl: [["x"], []],
        il: [[1], ["9007199254740993"]],
      },
      allow_registry_cache: true,
    });
    // typed_push feeds two views: one online row per frame row and view
    expect(res).toEqual({ rows: 2, written: 4, skipped_older: 0 });
    expect(await count("public.typed")).toBe(before);
    const body = await read(
      ["typed:i32", "typed:i64", "typed:f32", "typed:s", "typed:ts", "typed:doc", "typed:il"],
      [5001, 5002],
    );
    expect(body.results.slice(1).map((r) => r.values)).toEqual([
      [1, 2],
      ["9007199254740993", 4],
      [42, 0.5],
      ["a", null],
      [1735689600, 1735689600],
      [{ k: "v" }, [1, 2]],
      [[1], ["9007199254740993"]],
    ]);
    expect(body.results[4]!.statuses).toEqual(["PRESENT", "NULL_VALUE"]);
    expect(body.results[1]!.event_timestamps).toEqual([iso(base), "2024-10-25T16:21:37.123456Z"]);
    // the second view fed by typed_push (ttl 60s): the 2024 row is past it, the recent one is not
    const short = await read(["typed_short:s"], [5001, 5002]);
    expect(short.results[1]!.statuses).toEqual(["OUTSIDE_MAX_AGE", "OUTSIDE_MAX_AGE"]);
    expect(short.results[1]!.event_timestamps).toEqual([iso(base), "2024-10-25T16:21:37.123456Z"]);
  });

  it("never overwrites a newer value with an older push; the created timestamp breaks ties", async () => {
    await pushOk(fresh([6001], [iso(base)], [0.5], [0.5]));
    // the answer says the older row was not stored
    expect(await pushOk(fresh([6001, 6003], [iso(base - 1000), iso(base)], [0.1, 0.2], [0.1, 0.2]))).toEqual({
      rows: 2,
      written: 1,
      skipped_older: 1,
    });
    expect((await read(["driver_hourly_stats_fresh:conv_rate"], [6001])).results[1]!.values).toEqual([0.5]);

    // typed_source has a created column: equal event times, the later created wins whatever the order
    const row = (s: string, created: string) => ({
      push_source_name: "typed_push",
      df: {
        driver_id: [6002],
        event_timestamp: [iso(base)],
        created: [created],
        ...Object.fromEntries(
          ["i32", "i64", "f32", "f64", "b", "flag", "ts", "doc", "fl", "sl", "il"].map((c) => [c, [null]]),
        ),
        s: [s],
      },
    });
    await pushOk(row("later", iso(base + 2000)));
    expect(await pushOk(row("earlier", iso(base + 1000)))).toEqual({ rows: 1, written: 0, skipped_older: 2 });
    expect((await read(["typed:s"], [6002])).results[1]!.values).toEqual(["later"]);
  });

  it("keeps the newest under concurrent pushes for one entity", async () => {
    const n = 30;
    const order = Array.from({ length: n }, (_, i) => i).sort(() => Math.random() - 0.5);
    const results = await Promise.all(
      order.map((i) => t.call("POST", "/push", fresh([6100], [iso(base + i * 1000)], [i / 100], [i]))),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const body = await read(["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats_fresh:acc_rate"], [6100]);
    expect(body.results[2]!.values).toEqual([n - 1]);
    expect(body.results[1]!.event_timestamps).toEqual([iso(base + (n - 1) * 1000)]);
  });

  it("appends to the batch table with to: offline, and to both with online_and_offline", async () => {
    const before = await count("public.driver_stats", "driver_id = 6200");
    expect(
      await pushOk({ ...fresh([6200, 6200], [iso(base), iso(base + 1000)], [0.25, 0.5], [1, 1]), to: "offline" }),
    ).toEqual({
      rows: 2,
    });
    expect(await count("public.driver_stats", "driver_id = 6200")).toBe(before + 2);
    expect((await read(["driver_hourly_stats_fresh:conv_rate"], [6200])).results[1]!.statuses).toEqual(["NOT_FOUND"]);

    await pushOk({
      ...fresh([6201], [iso(base)], ["0.75"], [1], { created: [iso(base + 5)] }),
      to: "online_and_offline",
    });
    const rows = (
      await client.query("SELECT conv_rate, event_timestamp, created FROM public.driver_stats WHERE driver_id = 6201")
    ).rows;
    expect(rows).toHaveLength(1);
    expect(rows[0].conv_rate).toBeCloseTo(0.75);
    expect(new Date(rows[0].event_timestamp).getTime()).toBe(base);
    expect((await read(["driver_hourly_stats_fresh:conv_rate"], [6201])).results[1]!.values).toEqual([0.75]);

    // every dtype reaches its column
    await pushOk({
      push_source_name: "typed_push",
      to: "offline",
      df: {
        driver_id: [6202],
        event_timestamp: [iso(base)],
        i32: [1],
        i64: ["9007199254740993"],
        f32: [0.5],
        f64: [0.25],
        s: ["x"],
        b: ["AAEC/w=="],
        flag: [true],
        ts: [1735689600],
        doc: [{ a: 1 }],
        fl: [[1.5]],
        sl: [["a", "b"]],
        il: [["9007199254740993"]],
      },
    });
    const typed = (
      await client.query(
        "SELECT i64::text, encode(b, 'base64') AS b, ts, doc, fl, sl, il::text[] AS il FROM public.typed WHERE driver_id = 6202",
      )
    ).rows[0];
    expect(typed).toMatchObject({
      i64: "9007199254740993",
      b: "AAEC/w==",
      doc: { a: 1 },
      fl: [1.5],
      sl: ["a", "b"],
      il: ["9007199254740993"],
    });
    expect(new Date(typed.ts).toISOString()).toBe("2025-01-01T00:00:00.000Z");
  });

  it("with online_and_offline, commits the batch rows only after the online write succeeded", async () => {
    const snapshot = await t.deps.snapshots.get("demo");
    const failing: OnlineStore = {
      ...t.online,
      write: async () => {
        throw new Error("online store down");
      },
      getOnlineFeatures: t.online.getOnlineFeatures.bind(t.online),
      ping: t.online.ping.bind(t.online),
      recordPush: t.online.recordPush.bind(t.online),
      lastPushes: t.online.lastPushes.bind(t.online),
      close: async () => {},
    };
    await expect(
      push({ online: failing, db: t.deps.db }, snapshot, {
        ...fresh([6300], [iso(base)], [0.5], [0.5]),
        to: "online_and_offline",
      }),
    ).rejects.toThrow(/online store down/);
    expect(await count("public.driver_stats", "driver_id = 6300")).toBe(0);
  });

  it("is served at /v1/projects/{project}/push, and /write-to-online-store writes one view", async () => {
    await pushOk(fresh([6400], [iso(base)], [0.5], [0.5]), "/v1/projects/demo/push");
    expect((await read(["driver_hourly_stats_fresh:conv_rate"], [6400])).results[1]!.values).toEqual([0.5]);
    const written = await pushOk(
      {
        feature_view_name: "driver_hourly_stats",
        df: {
          driver_id: [6401],
          event_timestamp: [iso(base)],
          conv_rate: [0.1],
          acc_rate: [0.2],
          avg_daily_trips: ["17"],
        },
      },
      "/write-to-online-store",
    );
    expect(written).toEqual({ rows: 1, written: 1, skipped_older: 0 });
    expect((await read(["driver_hourly_stats:avg_daily_trips"], [6401])).results[1]!.values).toEqual([17]);
  });

  it("accepts an empty frame", async () => {
    expect(await pushOk(fresh([], [], [], []))).toEqual({ rows: 0, written: 0, skipped_older: 0 });
  });
});

describe("bad pushes: 400 naming the problem, nothing written", () => {
  const ok = fresh([6900], [iso(base)], [0.5], [0.5]).df;
  const cases: [string, unknown, RegExp, string?][] = [
    ["unknown push source", { push_source_name: "nope", df: ok }, /unknown push source "nope"/],
    [
      "not a push source",
      { push_source_name: "driver_stats_source", df: ok },
      /is a postgres source, not a push source/,
    ],
    [
      "missing join key column",
      { push_source_name: "driver_stats_push", df: { ...ok, driver_id: undefined } },
      /df\.driver_id: missing join key/,
    ],
    [
      "missing timestamp column",
      { push_source_name: "driver_stats_push", df: { ...ok, event_timestamp: undefined } },
      /df\.event_timestamp: missing event timestamp/,
    ],
    [
      "missing feature column",
      { push_source_name: "driver_stats_push", df: { ...ok, acc_rate: undefined } },
      /df\.acc_rate: missing feature column/,
    ],
    [
      "unknown column",
      { push_source_name: "driver_stats_push", df: { ...ok, speed: [1] } },
      /df\.speed: unknown column/,
    ],
    [
      "value of the wrong type",
      { push_source_name: "driver_stats_push", df: { ...ok, conv_rate: ["fast"] } },
      /df\.conv_rate\[0\]: "fast" is not a number/,
    ],
    [
      "columns of different lengths",
      { push_source_name: "driver_stats_push", df: { ...ok, acc_rate: [0.5, 0.6] } },
      /df\.acc_rate: has 2 values but driver_id has 1/,
    ],
    [
      "bad timestamp",
      { push_source_name: "driver_stats_push", df: { ...ok, event_timestamp: ["yesterday"] } },
      /df\.event_timestamp\[0\].*not an ISO-8601/,
    ],
    [
      "null join key",
      { push_source_name: "driver_stats_push", df: { ...ok, driver_id: [null] } },
      /df\.driver_id\[0\]: a join key cannot be null/,
    ],
    [
      "key of the wrong type",
      { push_source_name: "driver_stats_push", df: { ...ok, driver_id: ["D1"] } },
      /df\.driver_id\[0\]: "D1" is not an integer/,
    ],
    [
      "bad target",
      { push_source_name: "driver_stats_push", df: ok, to: "redis" },
      /to must be online, offline or online_and_offline/,
    ],
    ["df not an object of arrays", { push_source_name: "driver_stats_push", df: { driver_id: 6900 } }, /df\.driver_id/],
    ["no df", { push_source_name: "driver_stats_push" }, /df/],
    [
      "int64 value out of range",
      {
        feature_view_name: "driver_hourly_stats",
        df: {
          driver_id: [6900],
          event_timestamp: [iso(base)],
          conv_rate: [1],
          acc_rate: [1],
          avg_daily_trips: ["99999999999999999999"],
        },
      },
      /df\.avg_daily_trips\[0\].*does not fit int64/,
      "/write-to-online-store",
    ],
    [
      "bytes not base64",
      {
        push_source_name: "typed_push",
        df: {
          driver_id: [6900],
          event_timestamp: [iso(base)],
          i32: [1],
          i64: [1],
          f32: [1],
          f64: [1],
          s: ["x"],
          b: ["not base64!"],
          flag: [true],
          ts: [1],
          doc: [1],
          fl: [[1]],
          sl: [["a"]],
          il: [[1]],
        },
      },
      /df\.b\[0\].*not base64/,
    ],
    [
      "int32 overflow",
      {
        push_source_name: "typed_push",
        df: {
          driver_id: [6900],
          event_timestamp: [iso(base)],
          i32: [2 ** 31],
          i64: [1],
          f32: [1],
          f64: [1],
          s: ["x"],
          b: [null],
          flag: [true],
          ts: [1],
          doc: [1],
          fl: [[1]],
          sl: [["a"]],
          il: [[1]],
        },
      },
      /df\.i32\[0\].*does not fit int32/,
    ],
    [
      "list expected",
      {
        push_source_name: "typed_push",
        df: {
          driver_id: [6900],
          event_timestamp: [iso(base)],
          i32: [1],
          i64: [1],
          f32: [1],
          f64: [1],
          s: ["x"],
          b: [null],
          flag: [true],
          ts: [1],
          doc: [1],
          fl: [1.5],
          sl: [["a"]],
          il: [[1]],
        },
      },
      /df\.fl\[0\].*not a list/,
    ],
    [
      "unknown feature view",
      { feature_view_name: "nope", df: ok },
      /unknown feature view "nope"/,
      "/write-to-online-store",
    ],
    [
      "offline push to a query source",
      {
        push_source_name: "query_push",
        df: { driver_id: [6900], event_timestamp: [iso(base)], x: [1] },
        to: "offline",
      },
      /is a query/,
    ],
    [
      "a bad row after good ones",
      {
        push_source_name: "driver_stats_push",
        df: {
          driver_id: [6900, 6901, 6902],
          event_timestamp: [iso(base), iso(base), iso(base)],
          conv_rate: [0.1, 0.2, "x"],
          acc_rate: [1, 1, 1],
        },
        to: "online_and_offline",
      },
      /df\.conv_rate\[2\]/,
    ],
  ];
  for (const [name, body, message, path] of cases) {
    it(name, async () => {
      const res = await t.call("POST", path ?? "/push", body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      const err = ErrorBody.parse(res.body).error;
      expect(err.code).toBe("invalid_argument");
      expect(err.message).toMatch(message);
    });
  }

  it("wrote nothing, online or offline", async () => {
    expect(await count("public.driver_stats", "driver_id BETWEEN 6900 AND 6902")).toBe(0);
    expect(await count("public.typed", "driver_id = 6900")).toBe(0);
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, found] = await t.redis.scan(cursor, "MATCH", `${t.prefix}*}driver_id=690?:*`, "COUNT", 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== "0");
    expect(keys).toEqual([]);
  });
});
