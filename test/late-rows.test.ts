import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Jobs } from "../src/http/routes/offline.ts";
import type { MaterializationJob } from "../src/offline/job.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

let t: TestContext;
let pgc: pg.Client;

// ttl 0 everywhere: stored values never expire, so what is read back does not depend on the test's clock
const DEFS = {
  entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
  data_sources: [
    { name: "cr_src", kind: "postgres", table: "public.late_cr", timestamp_field: "ts", created_timestamp_field: "cr" },
    { name: "lb_src", kind: "postgres", table: "public.late_lb", timestamp_field: "ts", lookback: "2h" },
    { name: "w_src", kind: "postgres", table: "public.late_w", timestamp_field: "ts", created_timestamp_field: "cr" },
  ],
  feature_views: [
    { name: "by_created", entities: ["driver"], source: "cr_src", ttl: 0, schema: [{ name: "x", dtype: "int64" }] },
    { name: "by_lookback", entities: ["driver"], source: "lb_src", ttl: 0, schema: [{ name: "x", dtype: "int64" }] },
    { name: "by_window", entities: ["driver"], source: "w_src", ttl: 0, schema: [{ name: "x", dtype: "int64" }] },
  ],
};

async function read(view: string, ids: number[]): Promise<(number | null)[]> {
  const snap = await t.deps.snapshots.get("l");
  const text = await t.online.getOnlineFeatures(
    snap,
    { features: [`${view}:x`], entities: { driver_id: ids } },
    { maxEntityRows: 1000 },
  );
  return JSON.parse(text).results[1].values;
}

async function incremental(view: string, end: string, partitions?: number): Promise<MaterializationJob> {
  const res = await t.call("POST", "/v1/projects/l/materialize-incremental", {
    end_ts: end,
    feature_views: [view],
    ...(partitions ? { partitions } : {}),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const job = Jobs.parse(res.body).jobs[0]!;
  expect(job.status, job.error ?? "").toBe("succeeded");
  return job;
}

const day = (hhmm: string) => `2024-01-01 ${hhmm}Z`;

beforeAll(async () => {
  t = await createTestContext();
  pgc = new pg.Client({ connectionString: t.db.url });
  await pgc.connect();
  await pgc.query(`
    CREATE TABLE public.late_cr (driver_id bigint, ts timestamptz NOT NULL, cr timestamptz, x bigint);
    CREATE TABLE public.late_lb (driver_id bigint, ts timestamptz NOT NULL, x bigint);
    CREATE TABLE public.late_w (driver_id bigint, ts timestamptz NOT NULL, cr timestamptz, x bigint);`);
  const res = await t.call("POST", "/v1/projects/l/apply", DEFS);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
});
afterAll(async () => {
  await pgc?.end();
  await t?.close();
});

describe("late rows of a source with created timestamps", () => {
  it("loads rows created since the previous run whatever their event time, never older over newer", async () => {
    await pgc.query(`INSERT INTO public.late_cr VALUES (1, $1, $1, 1), (2, $1, $1, 2)`, [day("10:00")]);
    const first = await incremental("by_created", "2024-01-01T12:00:00Z");
    // a first run has no previous one: nothing counts as late
    expect(first).toMatchObject({ rows_read: 2, rows_written: 2, late_rows: 0 });

    // arrived after the first run (created 12:30, after its watermark 10:00), event times before its end
    await pgc.query(
      `INSERT INTO public.late_cr VALUES
         (3, $1, $4, 3),    -- a new entity, late: loaded
         (1, $2, $4, 11),   -- late and newer than the online value (10:00): loaded
         (2, $3, $4, 22),   -- late but older than the online value (10:00): ignored
         (4, $1, $5, 4),    -- created exactly at the watermark: the first run had it to see; not late
         (6, $1, $4, 60),   -- late, but the same entity has a newer row in the window: the window's wins
         (6, $6, $6, 61),
         (5, $7, $7, 5)     -- in the second window`,
      [day("09:00"), day("11:00"), day("09:30"), day("12:30"), day("10:00"), day("12:10"), day("12:30")],
    );
    const second = await incremental("by_created", "2024-01-01T13:00:00Z");
    expect(second.start_ts).toBe("2024-01-01T12:00:00Z");
    // read: 3, 1, 2, 6, 5 (one row each); written: all but 2; late among them: 3 and 1
    expect(second).toMatchObject({ rows_read: 5, rows_written: 4, late_rows: 2 });
    expect(await read("by_created", [1, 2, 3, 4, 5, 6])).toEqual([11, 2, 3, null, 5, 61]);

    // nothing created since the second run's watermark (12:30): nothing read
    const third = await incremental("by_created", "2024-01-01T14:00:00Z");
    expect(third).toMatchObject({ rows_read: 0, rows_written: 0, late_rows: 0 });

    // the job record says so over HTTP too
    const got = await t.call("GET", `/v1/projects/l/materialization-jobs/${second.id}`);
    expect(Jobs.shape.jobs.element.parse(got.body)).toEqual(second);
  });

  it("goes through the same partitions, each counting its own late rows", async () => {
    // 40 late entities and one late row older than its online value, created after the last run's watermark
    await pgc.query(`INSERT INTO public.late_cr SELECT 100 + g, $1, $2, g FROM generate_series(1, 40) g`, [
      day("08:00"),
      day("14:30"),
    ]);
    await pgc.query(`INSERT INTO public.late_cr VALUES (1, $1, $2, 999)`, [day("10:30"), day("14:30")]);
    const job = await incremental("by_created", "2024-01-01T15:00:00Z", 3);
    expect(job).toMatchObject({ rows_read: 41, rows_written: 40, late_rows: 40 });
    expect(job.partitions).toHaveLength(3);
    expect(job.partitions.reduce((n, p) => n + p.late_rows, 0)).toBe(40);
    for (const p of job.partitions) {
      expect(p.late_rows).toBeGreaterThan(0);
      expect(p.late_rows).toBeLessThan(40);
    }
    const ids = Array.from({ length: 40 }, (_, i) => 101 + i);
    expect(await read("by_created", ids)).toEqual(ids.map((id) => id - 100));
    expect(await read("by_created", [1])).toEqual([11]);
  });

  it("a window job reads no late rows", async () => {
    await pgc.query(`INSERT INTO public.late_cr VALUES (7, $1, $2, 7)`, [day("08:00"), day("15:30")]);
    const res = await t.call("POST", "/v1/projects/l/materialize", {
      start_ts: "2024-01-01T15:00:00Z",
      end_ts: "2024-01-01T16:00:00Z",
      feature_views: ["by_created"],
    });
    expect(Jobs.parse(res.body).jobs[0]).toMatchObject({ kind: "window", rows_read: 0, late_rows: 0 });
    // the next incremental run still finds it: late since its previous incremental run's watermark (14:30)
    const job = await incremental("by_created", "2024-01-01T17:00:00Z");
    expect(job).toMatchObject({ start_ts: "2024-01-01T16:00:00Z", rows_read: 1, late_rows: 1 });
    expect(await read("by_created", [7])).toEqual([7]);
  });

  it("a view only ever materialised by windows: its first incremental run starts from the last window's watermark", async () => {
    await pgc.query(`INSERT INTO public.late_w VALUES (1, $1, $1, 1)`, [day("10:00")]);
    const res = await t.call("POST", "/v1/projects/l/materialize", {
      start_ts: "2024-01-01T09:00:00Z",
      end_ts: "2024-01-01T12:00:00Z",
      feature_views: ["by_window"],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await pgc.query(`INSERT INTO public.late_w VALUES (2, $1, $2, 2), (3, $1, $3, 3)`, [
      day("11:00"),
      day("12:30"),
      day("10:00"), // created at the window job's watermark: it had it to see
    ]);
    const job = await incremental("by_window", "2024-01-01T13:00:00Z");
    expect(job).toMatchObject({ start_ts: "2024-01-01T12:00:00Z", rows_read: 1, late_rows: 1 });
    expect(await read("by_window", [1, 2, 3])).toEqual([1, 2, null]);
  });
});

describe("the watermark", () => {
  it("a row created in the database's future does not move it: later late rows are still found", async () => {
    await pgc.query(`CREATE TABLE public.late_f (driver_id bigint, ts timestamptz NOT NULL, cr timestamptz, x bigint)`);
    const defs = structuredClone(DEFS);
    defs.data_sources.push({
      name: "f_src",
      kind: "postgres",
      table: "public.late_f",
      timestamp_field: "ts",
      created_timestamp_field: "cr",
    });
    defs.feature_views.push({ ...defs.feature_views[0]!, name: "by_future", source: "f_src" });
    const applied = await t.call("POST", "/v1/projects/l/apply", defs);
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    // a writer whose clock runs far ahead stamped row 1; row 2 was written as usual
    await pgc.query(`INSERT INTO public.late_f VALUES (1, $1, '2999-01-01Z', 1), (2, $1, $1, 2)`, [day("10:00")]);
    expect(await incremental("by_future", "2024-01-01T12:00:00Z")).toMatchObject({ rows_read: 2 });
    // late, created after row 2 but long before row 1's created time: found (the watermark is 10:00, not 2999)
    await pgc.query(`INSERT INTO public.late_f VALUES (3, $1, $2, 3)`, [day("09:00"), day("12:30")]);
    const job = await incremental("by_future", "2024-01-01T13:00:00Z");
    // row 1 is read again while its created time is in the future (written again unchanged): 3 and 1 are late
    expect(job).toMatchObject({ rows_read: 2, late_rows: 2 });
    expect(await read("by_future", [1, 2, 3])).toEqual([1, 2, 3]);
  });
  it("is taken when the job runs, not when it is asked for: a locked source holds no ?async=true answer", async () => {
    await pgc.query(`CREATE TABLE public.late_k (driver_id bigint, ts timestamptz NOT NULL, cr timestamptz, x bigint)`);
    await pgc.query(`INSERT INTO public.late_k VALUES (1, $1, $1, 1)`, [day("10:00")]);
    const applied = await t.call("POST", "/v1/projects/lk/apply", {
      entities: DEFS.entities,
      data_sources: [{ ...DEFS.data_sources[0]!, name: "k_src", table: "public.late_k" }],
      feature_views: [{ ...DEFS.feature_views[0]!, name: "by_locked", source: "k_src" }],
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    let id: string;
    try {
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE public.late_k IN ACCESS EXCLUSIVE MODE");
      const asked = await Promise.race([
        t.call("POST", "/v1/projects/lk/materialize-incremental?async=true", { end_ts: "2024-01-01T12:00:00Z" }),
        new Promise<"held">((r) => setTimeout(() => r("held"), 10_000).unref()),
      ]);
      if (asked === "held") throw new Error("?async=true waited for the locked source");
      expect(asked.status, JSON.stringify(asked.body)).toBe(202);
      id = Jobs.parse(asked.body).jobs[0]!.id;
    } finally {
      await holder.query("COMMIT");
      await holder.end();
    }
    let job: MaterializationJob | undefined;
    for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
      const res = await t.call("GET", `/v1/projects/lk/materialization-jobs/${id}`);
      job = res.body as MaterializationJob;
      if (!["queued", "running"].includes(job.status)) break;
    }
    expect(job).toMatchObject({ status: "succeeded", rows_read: 1 });
    // the watermark (10:00) was recorded by the run: a row created after it is late for the next run
    await pgc.query(`INSERT INTO public.late_k VALUES (2, $1, $2, 2)`, [day("09:00"), day("12:30")]);
    const res = await t.call("POST", "/v1/projects/lk/materialize-incremental", { end_ts: "2024-01-01T13:00:00Z" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Jobs.parse(res.body).jobs[0]).toMatchObject({ status: "succeeded", rows_read: 1, late_rows: 1 });
  });
});

describe("lookback on a source without created timestamps", () => {
  it("re-reads exactly `lookback` before each incremental run's start, nothing before it", async () => {
    await pgc.query(`INSERT INTO public.late_lb VALUES (1, $1, 1)`, [day("10:00")]);
    const first = await incremental("by_lookback", "2024-01-01T12:00:00Z");
    expect(first).toMatchObject({ rows_read: 1, late_rows: 0 });

    await pgc.query(
      `INSERT INTO public.late_lb VALUES
         (2, $1, 2),   -- inside the lookback [10:00, 12:00)
         (3, $2, 3),   -- a microsecond before it: not read
         (4, $3, 4),   -- at its first instant: read
         (1, $4, 11),  -- newer than the online value: read and written
         (6, $5, 6)    -- in the window`,
      [day("10:30"), "2024-01-01 09:59:59.999999Z", day("10:00"), day("11:00"), day("12:30")],
    );
    const second = await incremental("by_lookback", "2024-01-01T13:00:00Z");
    expect(second.start_ts).toBe("2024-01-01T12:00:00Z");
    expect(second).toMatchObject({ rows_read: 4, rows_written: 4, late_rows: 3 });
    expect(await read("by_lookback", [1, 2, 3, 4, 6])).toEqual([11, 2, null, 4, 6]);

    // a row inside the next lookback but older than what is online: read, not written
    await pgc.query(`INSERT INTO public.late_lb VALUES (6, $1, 66)`, [day("12:15")]);
    const third = await incremental("by_lookback", "2024-01-01T13:30:00Z");
    // lookback [11:00, 13:00): 1@11:00 (as stored: written again, unchanged), 6@12:30 (as stored; 12:15 is older)
    expect(third).toMatchObject({ rows_read: 2, rows_written: 2, late_rows: 2 });
    expect(await read("by_lookback", [1, 6])).toEqual([11, 6]);
  });

  it("a bad lookback is a definitions error naming it; plan shows a change of it", async () => {
    const bad = structuredClone(DEFS);
    (bad.data_sources[1] as Record<string, unknown>).lookback = "2 fortnights";
    const res = await t.call("POST", "/v1/projects/l/plan", bad);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain("data_sources[1].lookback");
    expect(JSON.stringify(res.body)).toContain("lookback must be a whole number of seconds or a duration");

    const changed = structuredClone(DEFS);
    (changed.data_sources[1] as Record<string, unknown>).lookback = "3h";
    const plan = await t.call("POST", "/v1/projects/l/plan", changed);
    expect(plan.status, JSON.stringify(plan.body)).toBe(200);
    const change = JSON.stringify(plan.body);
    expect(change).toContain('"field":"lookback"');
    expect(change).toContain('"from":7200');
    expect(change).toContain('"to":10800');
  });
});
