import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatPlan } from "../src/cli/format.ts";
import { selectFeatures } from "../src/offline/features.ts";
import { choosePlans, historicalFeatures, type PitPlan } from "../src/offline/pit.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

/**
 * Point-in-time joins against small tables whose answers are worked out by hand below.
 * View a (ttl 1h, created-timestamp ties), view a3 (the same source, ttl 3h), view b (composite key, ttl 0).
 */
let t: TestContext;

const DEFS = {
  entities: [
    { name: "driver", join_key: "driver_id", value_type: "int64" },
    { name: "customer", join_key: "customer_id", value_type: "string" },
  ],
  data_sources: [
    {
      name: "a_src",
      kind: "postgres",
      table: "public.pit_a",
      timestamp_field: "ts",
      created_timestamp_field: "created",
    },
    {
      name: "b_src",
      kind: "postgres",
      query: "select driver_id, customer_id, ts, y, tags from public.pit_b",
      timestamp_field: "ts",
    },
  ],
  feature_views: [
    {
      name: "a",
      entities: ["driver"],
      source: "a_src",
      ttl: "1h",
      schema: [
        { name: "x", dtype: "float32" },
        { name: "n", dtype: "int64" },
      ],
    },
    {
      name: "a3",
      entities: ["driver"],
      source: "a_src",
      ttl: "3h",
      schema: [
        { name: "x", dtype: "float32" },
        { name: "n", dtype: "int64" },
      ],
    },
    {
      name: "b",
      entities: ["driver", "customer"],
      source: "b_src",
      ttl: 0,
      schema: [
        { name: "y", dtype: "string" },
        { name: "tags", dtype: "string[]" },
      ],
    },
  ],
  feature_services: [
    {
      name: "svc",
      features: [
        { feature_view: "a", features: ["n"] },
        { feature_view: "b", features: ["y"] },
      ],
    },
  ],
};

const DATA = `
CREATE TABLE public.pit_a (driver_id bigint, ts timestamptz NOT NULL, created timestamptz, x real, n bigint);
INSERT INTO public.pit_a VALUES
  (1, '2024-01-01 10:00Z', '2024-01-01 10:00Z', 1.0, 10),
  (1, '2024-01-01 11:00Z', '2024-01-01 11:00Z', 2.0, 20),
  (1, '2024-01-01 11:00Z', '2024-01-01 11:05Z', 2.5, 25),
  (1, '2024-01-01 11:00Z', NULL, 2.75, 27),
  (1, '2024-01-01 13:00Z', '2024-01-01 13:00Z', NULL, 30),
  (2, '2024-01-01 09:00Z', '2024-01-01 09:00Z', 5.0, 50),
  (2, '2024-01-01 11:00:00.000001Z', '2024-01-01 11:00Z', 6.0, 60);
CREATE INDEX ON public.pit_a (driver_id, ts);
CREATE TABLE public.pit_b (driver_id bigint, customer_id text, ts timestamp NOT NULL, y text, tags text[]);
INSERT INTO public.pit_b VALUES
  (1, 'c1', '2024-01-01 08:00', 'a', '{p,q}'),
  (1, 'c2', '2024-01-01 10:30', 'b', NULL),
  (2, 'c1', '2024-01-01 09:00', 'c', '{}'),
  (1, 'c1', '2024-01-01 14:00', 'future', NULL);
`;

beforeAll(async () => {
  t = await createTestContext();
  const c = new pg.Client({ connectionString: t.db.url });
  await c.connect();
  await c.query(DATA);
  await c.end();
  const res = await t.call("POST", "/v1/projects/p/apply", DEFS);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
});
afterAll(async () => t?.close());

// entity rows, with the hand-computed answers of each view next to them
const ROWS: {
  d: unknown;
  c: string;
  ts: string;
  a: [number | null, number | null];
  a3: [number | null, number | null];
  b: string | null;
}[] = [
  // before the first event of driver 1
  { d: 1, c: "c1", ts: "2024-01-01T09:59:59Z", a: [null, null], a3: [null, null], b: "a" },
  // exactly on an event; composite key (1,c2) has nothing yet
  { d: 1, c: "c2", ts: "2024-01-01T10:00:00Z", a: [1, 10], a3: [1, 10], b: null },
  // three rows at 11:00: the latest created wins, a null created loses
  { d: 1, c: "c2", ts: "2024-01-01 11:30:00", a: [2.5, 25], a3: [2.5, 25], b: "b" },
  // exactly ttl after the event: still inside
  { d: "1", c: "c1", ts: "2024-01-01T13:00:00+01:00", a: [2.5, 25], a3: [2.5, 25], b: "a" },
  // a microsecond past ttl: outside for a, inside for a3
  { d: 1, c: "c1", ts: "2024-01-01 12:00:00.000001", a: [null, null], a3: [2.5, 25], b: "a" },
  // a null feature value; the 14:00 row of b is in the future of this row
  { d: 1, c: "c1", ts: "2024-01-01T13:00:00Z", a: [null, 30], a3: [null, 30], b: "a" },
  // driver 2: 09:00 is 2h back (outside 1h, inside 3h); the 11:00:00.000001 row is a microsecond in the future
  { d: 2, c: "c1", ts: "2024-01-01T11:00:00Z", a: [null, null], a3: [5, 50], b: "c" },
  // a duplicate of row 3
  { d: 1, c: "c2", ts: "2024-01-01 11:30:00", a: [2.5, 25], a3: [2.5, 25], b: "b" },
  // an unknown driver
  { d: 3, c: "c1", ts: "2024-01-01T12:00:00Z", a: [null, null], a3: [null, null], b: null },
];

const entityDf = () => ({
  driver_id: ROWS.map((r) => r.d),
  customer_id: ROWS.map((r) => r.c),
  event_timestamp: ROWS.map((r) => r.ts),
});

describe("historical features", () => {
  it("answers the hand-computed rows, entity columns as sent then features, in request order", async () => {
    const res = await t.call("POST", "/v1/projects/p/historical-features", {
      entity_df: entityDf(),
      features: ["a:x", "a:n", "a3:x", "a3:n", "b:y"],
      full_feature_names: true,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body.df)).toEqual([
      "driver_id",
      "customer_id",
      "event_timestamp",
      "a__x",
      "a__n",
      "a3__x",
      "a3__n",
      "b__y",
    ]);
    expect(res.body.df.driver_id).toEqual(entityDf().driver_id);
    expect(res.body.df.event_timestamp).toEqual(entityDf().event_timestamp);
    expect(res.body.df.a__x).toEqual(ROWS.map((r) => r.a[0]));
    expect(res.body.df.a__n).toEqual(ROWS.map((r) => r.a[1]));
    expect(res.body.df.a3__x).toEqual(ROWS.map((r) => r.a3[0]));
    expect(res.body.df.a3__n).toEqual(ROWS.map((r) => r.a3[1]));
    expect(res.body.df.b__y).toEqual(ROWS.map((r) => r.b));
  });

  it("serves a feature service, short names, list values typed", async () => {
    const res = await t.call("POST", "/v1/projects/p/historical-features", {
      entity_df: entityDf(),
      feature_service: "svc",
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body.df)).toEqual(["driver_id", "customer_id", "event_timestamp", "n", "y"]);
    expect(res.body.df.n).toEqual(ROWS.map((r) => r.a[1]));
    const lists = await t.call("POST", "/v1/projects/p/historical-features", {
      entity_df: {
        driver_id: [1, 2, 1],
        customer_id: ["c1", "c1", "c2"],
        event_timestamp: ["2024-01-02", "2024-01-02", "2024-01-02"],
      },
      features: ["b:tags"],
    });
    expect(lists.body.df.tags).toEqual([null, [], null]);
  });

  it("answers an empty entity dataframe with empty columns", async () => {
    const res = await t.call("POST", "/v1/projects/p/historical-features", {
      entity_df: { driver_id: [], event_timestamp: [] },
      features: ["a:x"],
    });
    expect(res.status).toBe(200);
    expect(res.body.df).toEqual({ driver_id: [], event_timestamp: [], x: [] });
  });

  it("names a missing required field as missing, not by zod's type words", async () => {
    const res = await t.call("POST", "/v1/projects/p/historical-features", { features: ["a:x"] });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe("invalid body: entity_df is missing");
    expect(res.body.error.details).toEqual([{ path: "entity_df", message: "is missing" }]);
  });

  it.each([
    [{ entity_df: { driver_id: [1] }, features: ["a:x"] }, /event_timestamp/],
    [{ entity_df: { event_timestamp: ["2024-01-01"] }, features: ["a:x"] }, /driver_id/],
    [{ entity_df: { driver_id: [1, 2], event_timestamp: ["2024-01-01"] }, features: ["a:x"] }, /same length/],
    [{ entity_df: { driver_id: [1], event_timestamp: ["yesterday"] }, features: ["a:x"] }, /event_timestamp\[0\]/],
    [{ entity_df: { driver_id: [1.5], event_timestamp: ["2024-01-01"] }, features: ["a:x"] }, /driver_id\[0\]/],
    [
      { entity_df: { driver_id: [1], event_timestamp: ["2024-01-01"] }, features: ["nope:x"] },
      /unknown feature view "nope"/,
    ],
    [{ entity_df: { driver_id: [1], event_timestamp: ["2024-01-01"] }, features: ["a:nope"] }, /no feature "nope"/],
    // the online lookup's rule too (one resolver): exactly one colon
    [
      { entity_df: { driver_id: [1], event_timestamp: ["2024-01-01"] }, features: ["a:x:y"] },
      /"a:x:y" is not a feature reference/,
    ],
    [
      { entity_df: { driver_id: [1], event_timestamp: ["2024-01-01"] }, features: ["a:x", "a3:x"] },
      /collision: a:x and a3:x .*full_feature_names/,
    ],
    [
      { entity_df: { driver_id: [1], event_timestamp: ["2024-01-01"] }, feature_service: "nope" },
      /unknown feature service/,
    ],
    [{ entity_df: { driver_id: [1], event_timestamp: ["2024-01-01"] } }, /features/],
    [{ entity_df: { driver_id: "1", event_timestamp: ["2024-01-01"] }, features: ["a:x"] }, /entity_df/],
  ])("refuses bad input with a 400 naming it (%#)", async (body, pattern) => {
    const res = await t.call("POST", "/v1/projects/p/historical-features", body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(pattern);
  });

  it("treats definitions and requests as data, never as SQL", async () => {
    const res = await t.call("POST", "/v1/projects/p/historical-features", {
      entity_df: {
        driver_id: [1],
        customer_id: ["c1'); DROP TABLE public.pit_a; --"],
        event_timestamp: ["2024-01-02"],
      },
      features: ["b:y"],
    });
    expect(res.status).toBe(200);
    expect(res.body.df.y).toEqual([null]);
    const again = await t.call("POST", "/v1/projects/p/historical-features", {
      entity_df: { driver_id: [1], event_timestamp: ["2024-01-02"] },
      features: ["a3:n"],
    });
    expect(again.body.df.n).toEqual([null]);
  });
});

/**
 * Random sources and entity rows on a coarse time grid (so that ties, ttl edges and repeated rows are common), answered
 * by both plans and compared with a reference computed here from the rule itself. (key, ts, created) is unique in
 * the source, so that every entity row has one right answer.
 */
describe("historical features, randomised, on both plans", () => {
  const MIN = 60_000;
  const BASE = Date.parse("2024-03-01T00:00:00Z");
  const VIEWS = [
    { name: "r1", keys: ["k1"], ttlMin: 120 },
    { name: "r2", keys: ["k1", "k2"], ttlMin: 0 },
    { name: "r3", keys: ["k1"], ttlMin: 30 },
  ];
  type SrcRow = { k1: number | null; k2: string | null; ts: number; created: number | null; v: number };
  type EntRow = { k1: number | null; k2: string | null; ts: number };

  function lcg(seed: number) {
    let s = seed >>> 0;
    return (n: number) => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return Math.floor((s / 2 ** 32) * n);
    };
  }

  function generate(seed: number) {
    const rnd = lcg(seed);
    const src: SrcRow[] = [];
    const seen = new Set<string>();
    for (let i = 0; src.length < 150 && i < 1000; i++) {
      const row: SrcRow = {
        k1: rnd(12) === 0 ? null : rnd(5),
        k2: rnd(10) === 0 ? null : ["a", "b"][rnd(2)]!,
        ts: BASE + rnd(30) * 10 * MIN,
        created: rnd(4) === 0 ? null : BASE + rnd(6) * MIN,
        v: i + 1,
      };
      // one row per (k1, ts, created) even across k2: no two candidates tie for any view
      const key = `${row.k1}|${row.ts}|${row.created}`;
      if (seen.has(key)) continue;
      seen.add(key);
      src.push(row);
    }
    const ents: EntRow[] = [];
    for (let i = 0; i < 120; i++) {
      if (i > 0 && rnd(10) === 0) {
        ents.push({ ...ents[rnd(ents.length)]! }); // a repeated entity row
        continue;
      }
      ents.push({
        k1: rnd(15) === 0 ? null : rnd(6), // 5: an entity with no rows
        k2: ["a", "b", "c"][rnd(3)]!,
        // on the grid (ties with events, exact ttl edges) or a microsecond-free minute off it
        ts: BASE + rnd(34) * 10 * MIN + (rnd(3) === 0 ? rnd(10) * MIN : 0),
      });
    }
    return { src, ents };
  }

  function expected(src: SrcRow[], ents: EntRow[], view: (typeof VIEWS)[number]): (number | null)[] {
    return ents.map((e) => {
      let best: SrcRow | undefined;
      for (const r of src) {
        if (view.keys.some((k) => e[k as "k1"] === null || r[k as "k1"] !== e[k as "k1"])) continue;
        if (r.ts > e.ts || (view.ttlMin > 0 && r.ts < e.ts - view.ttlMin * MIN)) continue;
        const later =
          !best ||
          r.ts > best.ts ||
          (r.ts === best.ts && r.created !== null && (best.created === null || r.created > best.created));
        if (later) best = r;
      }
      return best ? best.v : null;
    });
  }

  let client: pg.Client;
  beforeAll(async () => {
    client = new pg.Client({ connectionString: t.db.url });
    await client.connect();
    await client.query(
      "CREATE TABLE public.rnd_indexed (k1 bigint, k2 text, ts timestamptz, created timestamptz, v bigint); " +
        "CREATE INDEX ON public.rnd_indexed (k1, k2, ts); " +
        "CREATE TABLE public.rnd_plain (k1 bigint, k2 text, ts timestamp, created timestamptz, v bigint)",
    );
    const defs = {
      entities: [
        { name: "e1", join_key: "k1", value_type: "int64" },
        { name: "e2", join_key: "k2", value_type: "string" },
      ],
      data_sources: ["rnd_indexed", "rnd_plain"].map((table) => ({
        name: table,
        kind: "postgres",
        table: `public.${table}`,
        timestamp_field: "ts",
        created_timestamp_field: "created",
      })),
      feature_views: ["rnd_indexed", "rnd_plain"].flatMap((table) =>
        VIEWS.map((v) => ({
          name: `${v.name}_${table}`,
          entities: v.keys.map((k) => (k === "k1" ? "e1" : "e2")),
          source: table,
          ttl: v.ttlMin * 60,
          schema: [{ name: "v", dtype: "int64" }],
        })),
      ),
    };
    const res = await t.call("POST", "/v1/projects/rnd/apply", defs);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });
  afterAll(async () => client?.end());

  it("chooses the probe where an index leads with the join keys, the hash join elsewhere", async () => {
    const snap = await t.deps.snapshots.getExisting("rnd");
    const features = ["r1_rnd_indexed:v", "r2_rnd_indexed:v", "r2_rnd_plain:v"];
    const plans = await choosePlans(t.deps.db, selectFeatures(snap, { features, full_feature_names: true }));
    // (k1, k2, ts) leads with r1's key k1 and with r2's (k1, k2); rnd_plain has no index
    expect(plans).toEqual(["lateral", "lateral", "set"]);
  });

  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: both plans give the reference answer on an indexed and an unindexed source`, async () => {
      const { src, ents } = generate(seed);
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      for (const table of ["rnd_indexed", "rnd_plain"]) {
        await client.query(`TRUNCATE public.${table}`);
        await client.query(
          `INSERT INTO public.${table} SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[])`,
          [
            src.map((r) => r.k1),
            src.map((r) => r.k2),
            src.map((r) => iso(r.ts)),
            src.map((r) => iso(r.created)),
            src.map((r) => r.v),
          ],
        );
      }
      const snap = await t.deps.snapshots.getExisting("rnd");
      const req = {
        entity_df: {
          k1: ents.map((e) => e.k1),
          k2: ents.map((e) => e.k2),
          event_timestamp: ents.map((e) => iso(e.ts)),
        },
        features: ["rnd_indexed", "rnd_plain"].flatMap((table) => VIEWS.map((v) => `${v.name}_${table}:v`)),
        full_feature_names: true,
      };
      for (const plan of ["lateral", "set"] as PitPlan[]) {
        const { df } = await historicalFeatures(t.deps.db, snap, req, { plan });
        expect(df.k1).toEqual(req.entity_df.k1);
        expect(df.event_timestamp).toEqual(req.entity_df.event_timestamp);
        for (const table of ["rnd_indexed", "rnd_plain"])
          for (const v of VIEWS)
            expect(df[`${v.name}_${table}__v`], `${plan} ${v.name}_${table}`).toEqual(expected(src, ents, v));
      }
    });
  }
});

describe("plan and apply warn about a source without an index serving a view's join", () => {
  it("warns with the CREATE INDEX that would serve it, and stops once it exists", async () => {
    const c = new pg.Client({ connectionString: t.db.url });
    await c.connect();
    try {
      await c.query(
        "CREATE TABLE public.adv_src (region text, store bigint, ts timestamptz, sales real); " +
          "CREATE INDEX ON public.adv_src (store)", // leads with one of the two keys only
      );
      const defs = {
        entities: [
          { name: "region", value_type: "string" },
          { name: "store", value_type: "int64" },
        ],
        data_sources: [
          { name: "adv", kind: "postgres", table: "public.adv_src", timestamp_field: "ts" },
          { name: "adv_q", kind: "postgres", query: "select * from public.adv_src", timestamp_field: "ts" },
        ],
        feature_views: [
          {
            name: "by_store",
            entities: ["region", "store"],
            source: "adv",
            schema: [{ name: "sales", dtype: "float32" }],
          },
          { name: "by_query", entities: ["store"], source: "adv_q", schema: [{ name: "sales", dtype: "float32" }] },
        ],
      };
      const plan = await t.call("POST", "/v1/projects/adv/plan", defs);
      expect(plan.status, JSON.stringify(plan.body)).toBe(200);
      expect(plan.body.warnings).toEqual([
        {
          path: "feature_views.by_store",
          message: expect.stringMatching(/public\.adv_src .*join keys region, store/),
          suggestion: 'CREATE INDEX ON "public"."adv_src" ("region", "store", "ts")',
        },
      ]);
      expect(formatPlan(plan.body)).toContain('CREATE INDEX ON "public"."adv_src" ("region", "store", "ts");');
      const applied = await t.call("POST", "/v1/projects/adv/apply", defs);
      expect(applied.status).toBe(200);
      expect(applied.body.applied).toBe(true);
      expect(applied.body.warnings.map((w: { path: string }) => w.path)).toEqual(["feature_views.by_store"]);

      await c.query(plan.body.warnings[0].suggestion);
      const again = await t.call("POST", "/v1/projects/adv/plan", defs);
      expect(again.body.warnings).toEqual([]);
      expect(formatPlan(again.body)).not.toContain("warning");
    } finally {
      await c.end();
    }
  });
});
