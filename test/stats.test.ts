import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody } from "../src/http/errors.ts";
import { ViewStats } from "../src/http/quality-schemas.ts";
import { MaterializationJob } from "../src/offline/job.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

let t: TestContext;

interface Row {
  id: number;
  ts: Date;
  x: number | null;
  n: number | null;
  s: string | null;
  b: boolean | null;
}
const BASE = Date.UTC(2024, 0, 1);
const WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"];
// deterministic, uneven data: a value repeated, nulls, a skew in the strings
const ROWS: Row[] = Array.from({ length: 500 }, (_, i) => ({
  id: i % 37,
  ts: new Date(BASE + i * 3600_000),
  x: i % 11 === 0 ? null : ((i * 7919) % 1000) / 8 - 20,
  n: i % 13 === 0 ? null : (i * 31) % 97,
  s: i % 17 === 0 ? null : WORDS[(i * i) % WORDS.length]!,
  b: i % 5 === 0 ? null : i % 3 === 0,
}));

beforeAll(async () => {
  t = await createTestContext({ defaultProject: "st" });
  const c = new pg.Client({ connectionString: t.db.url });
  await c.connect();
  await c.query(
    "CREATE TABLE public.st (id bigint, ts timestamptz, x double precision, n bigint, s text, b boolean, j jsonb)",
  );
  await c.query(
    `INSERT INTO public.st (id, ts, x, n, s, b) SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::bigint[], $5::text[], $6::bool[])`,
    [
      ROWS.map((r) => r.id),
      ROWS.map((r) => r.ts.toISOString()),
      ROWS.map((r) => r.x),
      ROWS.map((r) => r.n),
      ROWS.map((r) => r.s),
      ROWS.map((r) => r.b),
    ],
  );
  await c.end();
  const res = await t.call("POST", "/v1/projects/st/apply", {
    entities: [{ name: "thing", join_key: "id", value_type: "int64" }],
    data_sources: [{ name: "src", kind: "postgres", table: "public.st", timestamp_field: "ts" }],
    feature_views: [
      {
        name: "v",
        entities: ["thing"],
        source: "src",
        schema: [
          { name: "x", dtype: "float64" },
          { name: "n", dtype: "int64" },
          { name: "s", dtype: "string" },
          { name: "b", dtype: "bool" },
          { name: "j", dtype: "json" },
        ],
      },
    ],
  });
  expect(res.status).toBe(200);
});
afterAll(async () => t?.close());

/** The figures, computed here from the rows the test wrote. */
function expected(rows: Row[], name: "x" | "n" | "s" | "b") {
  const values = rows.map((r) => r[name]).filter((v) => v !== null);
  const out: Record<string, unknown> = {
    count: rows.length,
    null_count: rows.length - values.length,
    distinct: new Set(values).size,
  };
  if (name === "x" || name === "n") {
    const nums = values as number[];
    const min = Math.min(...nums);
    const max = Math.max(...nums);
    const mean = nums.reduce((a, b) => a + b, 0) / nums.length;
    const variance = nums.reduce((a, b) => a + (b - mean) ** 2, 0) / (nums.length - 1);
    const counts = new Array(10).fill(0);
    for (const v of nums) counts[Math.min(Math.floor(((v - min) / (max - min)) * 10), 9)]++;
    Object.assign(out, { min, max, mean, stddev: Math.sqrt(variance), histogram: counts });
  } else {
    const freq = new Map<unknown, number>();
    for (const v of values) freq.set(v, (freq.get(v) ?? 0) + 1);
    const top = [...freq.entries()]
      .map(([value, count]) => ({ value, count }))
      .sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)))
      .slice(0, 10);
    Object.assign(out, { min: null, max: null, mean: null, stddev: null, top_values: top });
  }
  return out;
}

async function stats(query = ""): Promise<ViewStats> {
  const res = await t.app.request(`/v1/projects/st/feature-views/v/stats${query}`);
  expect(res.status).toBe(200);
  return ViewStats.parse(await res.json());
}

function check(got: Pick<ViewStats, "rows" | "features">, rows: Row[]) {
  expect(got.rows).toBe(rows.length);
  for (const name of ["x", "n", "s", "b"] as const) {
    const f = got.features.find((x) => x.name === name)!;
    const want = expected(rows, name);
    expect({ name, count: f.count, null_count: f.null_count, distinct: f.distinct }).toEqual({
      name,
      count: want.count,
      null_count: want.null_count,
      distinct: want.distinct,
    });
    if (name === "x" || name === "n") {
      expect(f.min).toBe(want.min);
      expect(f.max).toBe(want.max);
      expect(f.mean).toBeCloseTo(want.mean as number, 9);
      expect(f.stddev).toBeCloseTo(want.stddev as number, 9);
      expect(f.histogram!.map((h) => h.count)).toEqual(want.histogram);
      expect(f.histogram![0]!.lower).toBe(want.min);
      expect(f.histogram![9]!.upper).toBe(want.max);
      expect(f.top_values).toBeNull();
    } else {
      expect([f.min, f.max, f.mean, f.stddev, f.histogram]).toEqual([null, null, null, null, null]);
      expect(f.top_values).toEqual(want.top_values);
    }
  }
}

describe("GET …/feature-views/{name}/stats", () => {
  it("over the whole source: every figure equal to the ones computed here", async () => {
    const got = await stats();
    expect([got.start_ts, got.end_ts]).toEqual([null, null]);
    check(got, ROWS);
    // a json feature that is always null: counted, nothing else
    expect(got.features.find((f) => f.name === "j")).toMatchObject({ count: 500, null_count: 500, distinct: 0 });
  });

  it("over a window [start_ts, end_ts) of event time", async () => {
    const start = new Date(BASE + 100 * 3600_000);
    const end = new Date(BASE + 250 * 3600_000);
    const got = await stats(`?start_ts=${start.toISOString()}&end_ts=${end.toISOString()}`);
    expect([got.start_ts, got.end_ts]).toEqual([
      start.toISOString().replace(".000", ""),
      end.toISOString().replace(".000", ""),
    ]);
    check(
      got,
      ROWS.filter((r) => r.ts >= start && r.ts < end),
    );
    expect(got.rows).toBe(150);
  });

  it("400 for a bad or empty window, 404 for an unknown view", async () => {
    for (const q of ["?start_ts=nope", "?start_ts=2024-01-02T00:00:00Z&end_ts=2024-01-01T00:00:00Z"]) {
      const res = await t.app.request(`/v1/projects/st/feature-views/v/stats${q}`);
      expect(res.status).toBe(400);
      ErrorBody.parse(await res.json());
    }
    expect((await t.app.request("/v1/projects/st/feature-views/nope/stats")).status).toBe(404);
  });
});

describe("a materialisation job's statistics", () => {
  it("are those of the rows it read (each entity's latest in the window), across its partitions, as recorded", async () => {
    const start = new Date(BASE + 100 * 3600_000);
    const end = new Date(BASE + 250 * 3600_000);
    const res = await t.call("POST", "/v1/projects/st/materialize", {
      start_ts: start.toISOString(),
      end_ts: end.toISOString(),
      feature_views: ["v"],
      partitions: 2,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = res.body.jobs[0].id;
    const read = await t.app.request(`/v1/projects/st/materialization-jobs/${id}`);
    const job = MaterializationJob.parse(await read.json());
    expect(job.status).toBe("succeeded");
    // computed here: each entity's latest row in [start, end)
    const latest = new Map<number, Row>();
    for (const r of ROWS)
      if (r.ts >= start && r.ts < end && !(r.ts < (latest.get(r.id)?.ts ?? r.ts))) latest.set(r.id, r);
    expect(job.rows_read).toBe(latest.size);
    expect(job.stats).not.toBeNull();
    check(job.stats!, [...latest.values()]);
    expect(job.stats!.features.map((f) => f.name)).toEqual(["x", "n", "s", "b", "j"]);
  });
});
