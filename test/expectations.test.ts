import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody } from "../src/http/errors.ts";
import { MaterializationJob } from "../src/offline/job.ts";
import { rowsOf } from "../src/offline/sql.ts";
import { createTestContext, type TestContext } from "./support/app.ts";
import { runCli } from "./support/process.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";

let t: TestContext;

const defs = (schema: unknown[]) => ({
  entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
  data_sources: [
    {
      name: "stats",
      kind: "postgres",
      table: "public.q_stats",
      timestamp_field: "event_timestamp",
    },
    { name: "stats_push", kind: "push", batch_source: "stats" },
  ],
  feature_views: [{ name: "checked", entities: ["driver"], source: "stats_push", ttl: 0, schema }],
});

const SCHEMA = [
  { name: "rate", dtype: "float32", expect: { not_null: true, min: 0, max: 1 } },
  { name: "trips", dtype: "int64", expect: { min: 0 } },
  { name: "tier", dtype: "string", expect: { one_of: ["gold", "silver"], max_length: 6 } },
  { name: "tags", dtype: "string[]", expect: { max_length: 2 } },
];

beforeAll(async () => {
  t = await createTestContext({ defaultProject: "q" });
  await t.deps.db.execute(
    sql`CREATE TABLE public.q_stats (driver_id bigint, event_timestamp timestamptz, rate real, trips bigint, tier text, tags text[])`,
  );
  const res = await t.call("POST", "/v1/projects/q/apply", defs(SCHEMA));
  expect(res.status).toBe(200);
});
afterAll(async () => t?.close());

const ts = new Date(Date.now() - 60_000).toISOString();
const frame = (over: Record<string, unknown[]> = {}) => ({
  driver_id: [1, 2, 3, 4],
  event_timestamp: [ts, ts, ts, ts],
  rate: [0, 0.5, 1, 0.25],
  trips: [0, 1, 2, 3],
  tier: ["gold", "silver", null, "gold"],
  tags: [[], ["a", "b"], null, ["c"]],
  ...over,
});

async function onlineRows(): Promise<string[]> {
  const res = await t.call("POST", "/get-online-features", {
    features: ["checked:rate"],
    entities: { driver_id: [1, 2, 3, 4] },
  });
  expect(res.status).toBe(200);
  return res.body.results[1].statuses;
}
const offlineCount = async () =>
  Number(rowsOf<{ n: unknown }>(await t.deps.db.execute(sql`SELECT count(*) AS n FROM public.q_stats`))[0]!.n);

describe("expectations on pushes and writes", () => {
  it("a push breaking any expectation is a 400 naming each row and feature, and nothing is written", async () => {
    const bad = frame({
      rate: [0.5, 1.5, null, -0.0001],
      trips: [0, -1, 2, 3],
      tier: ["gold", "bronze", "silver", "platinum"],
      tags: [["a", "b", "c"], [], null, []],
    });
    const res = await t.call("POST", "/push", { push_source_name: "stats_push", to: "online_and_offline", df: bad });
    expect(res.status).toBe(400);
    const body = ErrorBody.parse(res.body);
    expect(body.error.details.map((d) => d.path)).toEqual([
      "df.tags[0]",
      "df.rate[1]",
      "df.tier[1]",
      "df.trips[1]",
      "df.rate[2]",
      "df.rate[3]",
      "df.tier[3]",
    ]);
    const rate1 = body.error.details.find((d) => d.path === "df.rate[1]")!;
    expect(rate1).toMatchObject({ feature_view: "checked", feature: "rate", row: 1 });
    expect(rate1.message).toMatch(/1\.5 is above the maximum 1/);
    expect(body.error.details.find((d) => d.path === "df.rate[2]")!.message).toMatch(/null.*not_null/);
    expect(body.error.details.find((d) => d.path === "df.tier[3]")!.message).toMatch(/not one of/);
    expect(body.error.details.find((d) => d.path === "df.tags[0]")!.message).toMatch(
      /3 elements, more than max_length 2/,
    );
    expect(body.error.message).toMatch(/^df\.tags\[0\]: .*7 values in all.*nothing was written/);
    expect(await onlineRows()).toEqual(["NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"]);
    expect(await offlineCount()).toBe(0);
  });

  it("/write-to-online-store checks them too; min and max are inclusive; a frame within them is written", async () => {
    const res = await t.call("POST", "/write-to-online-store", {
      feature_view_name: "checked",
      df: frame({ rate: [0, 0.5, 1, 2] }),
    });
    expect(res.status).toBe(400);
    expect(ErrorBody.parse(res.body).error.details.map((d) => d.path)).toEqual(["df.rate[3]"]);
    expect(await onlineRows()).toEqual(["NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"]);
    const ok = await t.call("POST", "/push", { push_source_name: "stats_push", to: "online_and_offline", df: frame() });
    expect(ok.status).toBe(200);
    expect(await onlineRows()).toEqual(["PRESENT", "PRESENT", "PRESENT", "PRESENT"]);
    expect(await offlineCount()).toBe(4);
  });
});

describe("expectations in definitions", () => {
  it("are checked against the dtype, every problem named by path, and nothing applied", async () => {
    const res = await t.call(
      "POST",
      "/v1/projects/q/apply",
      defs([
        { name: "rate", dtype: "float32", expect: { min: 2, max: 1 } },
        { name: "trips", dtype: "int64", expect: { max_length: 3, one_of: [1, "x"] } },
        { name: "tier", dtype: "string", expect: { min: 0, unknown: true } },
        { name: "tags", dtype: "bytes", expect: { one_of: ["AA=="] } },
      ]),
    );
    expect(res.status).toBe(400);
    const paths = ErrorBody.parse(res.body)
      .error.details.map((d) => d.path)
      .sort();
    expect(paths).toEqual(
      [
        "feature_views[0].schema[0].expect.min",
        "feature_views[0].schema[1].expect.max_length",
        "feature_views[0].schema[1].expect.one_of[1]",
        "feature_views[0].schema[2].expect",
        "feature_views[0].schema[2].expect.min",
        "feature_views[0].schema[3].expect.one_of",
      ].sort(),
    );
    // the project still holds the first definitions
    const view = await t.call("GET", "/v1/projects/q/feature-views/checked");
    expect(view.body.spec.schema[0].expect).toEqual({ not_null: true, min: 0, max: 1 });
  });
});

describe("expectations in materialisation", () => {
  const HOUR = 3600_000;
  const now = Date.now();
  // each entity's latest row (an hour ago) breaks an expectation or not; its older row (two hours ago) always keeps them,
  // except entity 3's, which breaks one but is not the latest (so it is never read)
  const IDS = Array.from({ length: 40 }, (_, i) => i + 1);
  const broken = (id: number): string | undefined =>
    id % 5 === 0
      ? "max"
      : id % 7 === 0
        ? "one_of"
        : id % 11 === 0
          ? "not_null"
          : id === 13
            ? "max_length"
            : id === 17
              ? "min"
              : undefined;
  const latest = (id: number) => ({
    rate: broken(id) === "max" ? 1.5 : broken(id) === "not_null" ? null : (id % 10) / 10,
    trips: broken(id) === "min" ? -1 : id,
    tier: broken(id) === "one_of" ? "bronze" : id % 2 ? "gold" : "silver",
    tags: broken(id) === "max_length" ? ["a", "b", "c"] : [`t${id}`],
  });
  const rejected = IDS.filter((id) => broken(id) !== undefined);

  beforeAll(async () => {
    await t.deps.db.execute(
      sql`CREATE TABLE public.q_mat (driver_id bigint, event_timestamp timestamptz, rate real, trips bigint, tier text, tags text[])`,
    );
    const rows = IDS.flatMap((id) => [
      { id, at: now - 2 * HOUR, rate: id === 3 ? 7 : 0.5, trips: 0, tier: "gold", tags: [] as string[] },
      { id, at: now - HOUR, ...latest(id) },
    ]);
    for (const r of rows)
      await t.deps.db.execute(
        sql`INSERT INTO public.q_mat VALUES (${r.id}, ${new Date(r.at).toISOString()}, ${r.rate}, ${r.trips}, ${r.tier}, ${`{${r.tags.join(",")}}`})`,
      );
    const d = defs(SCHEMA);
    const res = await t.call("POST", "/v1/projects/qm/apply", {
      ...d,
      data_sources: [{ ...d.data_sources[0], table: "public.q_mat" }],
      feature_views: [{ ...d.feature_views[0], name: "mat", source: "stats" }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it("skips exactly the rows that break one, counts them in the job (per partition and in all) and in a metric", async () => {
    expect(rejected.length).toBe(17);
    const res = await t.call("POST", "/v1/projects/qm/materialize", {
      start_ts: new Date(now - 3 * HOUR).toISOString(),
      end_ts: new Date(now).toISOString(),
      partitions: 3,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const job = MaterializationJob.parse(
      (await t.call("GET", `/v1/projects/qm/materialization-jobs/${res.body.jobs[0].id}`)).body,
    );
    expect(job).toMatchObject({ status: "succeeded", rows_read: 40, rows_written: 23, rows_rejected: 17 });
    // each partition counted its own slice's (by Postgres' hash, as the partitions are cut)
    const slice = rowsOf<{ id: unknown; p: unknown }>(
      await t.deps.db.execute(
        sql`SELECT DISTINCT driver_id AS id, (hashtext(driver_id::text) & 2147483647) % 3 AS p FROM public.q_mat`,
      ),
    );
    const perPartition = [0, 1, 2].map(
      (p) => slice.filter((r) => Number(r.p) === p && rejected.includes(Number(r.id))).length,
    );
    expect(job.partitions.map((p) => p.rows_rejected)).toEqual(perPartition);
    expect(perPartition.filter((n) => n > 0).length).toBeGreaterThan(1);
    // a few examples, each naming the entity, the feature, the value and the expectation it breaks
    expect(job.rejected_examples.length).toBe(5);
    for (const e of job.rejected_examples) {
      const id = e.entity.driver_id as number;
      expect(rejected).toContain(id);
      const want = broken(id)!;
      expect(e.expectation).toBe(want);
      const feature = { max: "rate", not_null: "rate", min: "trips", one_of: "tier", max_length: "tags" }[want];
      expect(e.feature).toBe(feature);
      expect(e.value).toEqual(latest(id)[feature as keyof ReturnType<typeof latest>]);
      expect(e.message.length).toBeGreaterThan(0);
    }
    // nothing that breaks an expectation reached the online store; every other latest row did
    const online = await t.call("POST", "/v1/projects/qm/online-features", {
      features: ["mat:rate", "mat:trips", "mat:tier", "mat:tags"],
      entities: { driver_id: IDS },
    });
    expect(online.status).toBe(200);
    IDS.forEach((id, r) => {
      const statuses = online.body.results.slice(1).map((c: { statuses: string[] }) => c.statuses[r]);
      if (rejected.includes(id)) expect(statuses, `entity ${id}`).toEqual(Array(4).fill("NOT_FOUND"));
      else {
        const want = latest(id);
        const values = online.body.results.slice(1).map((c: { values: unknown[] }) => c.values[r]);
        expect(values, `entity ${id}`).toEqual([
          Math.fround(want.rate!) === want.rate ? want.rate : expect.closeTo(want.rate!, 6),
          want.trips,
          want.tier,
          want.tags,
        ]);
      }
    });
    const metrics = await (await t.app.request("/metrics")).text();
    expect(metrics).toContain('larder_materialization_rows_rejected_total{project="qm",feature_view="mat"} 17');
  });

  it("larder materialize prints the rejected rows under the job's line", async () => {
    const r = await runCli(
      ["materialize", new Date(now - 3 * HOUR).toISOString(), new Date(now).toISOString(), "-p", "qm"],
      { DATABASE_URL: t.db.url, REDIS_URL: TEST_REDIS_URL, LARDER_REDIS_PREFIX: t.prefix },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ mat .*: 40 entities read, \d+ written/);
    expect(r.stdout).toMatch(/17 rows rejected/);
    const examples = r.stdout.split("\n").filter((l) => /^ {4}\{"driver_id":\d+\} /.test(l));
    expect(examples).toHaveLength(5);
    expect(examples[0]).toMatch(/\(expect\.(not_null|min|max|one_of|max_length)\)$/);
    expect(r.stdout).toMatch(/… \(12 more\)/);
  }, 120_000);
});
