import { spawn } from "node:child_process";
import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Jobs } from "../src/http/routes/offline.ts";
import { silentLogger } from "../src/logger.ts";
import { Materializer } from "../src/offline/materialize.ts";
import { rowsOf } from "../src/offline/sql.ts";
import type { OnlineStore } from "../src/online/store.ts";
import { createTestContext, type TestContext } from "./support/app.ts";
import { cleanEnv, LARDER_BIN, ROOT } from "./support/process.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";

let t: TestContext;
let pgc: pg.Client;

const DEFS = {
  entities: [
    { name: "driver", join_key: "driver_id", value_type: "int64" },
    { name: "customer", join_key: "customer_id", value_type: "string" },
  ],
  data_sources: [
    {
      name: "a_src",
      kind: "postgres",
      table: "public.mat_a",
      timestamp_field: "ts",
      created_timestamp_field: "created",
    },
    { name: "c_src", kind: "postgres", table: "public.mat_c", timestamp_field: "ts" },
    // view a is fed by pushes too; materialisation reads the push source's batch table
    { name: "a_push", kind: "push", batch_source: "a_src" },
  ],
  feature_views: [
    // ttl 0: stored values never expire, so reads are independent of the test's clock
    {
      name: "a",
      entities: ["driver"],
      source: "a_push",
      ttl: 0,
      schema: [
        { name: "x", dtype: "float32" },
        { name: "n", dtype: "int64" },
      ],
    },
    // composite key; ttl 1d for incremental first runs (rows are near now)
    {
      name: "c",
      entities: ["driver", "customer"],
      source: "c_src",
      ttl: "1d",
      schema: [{ name: "y", dtype: "string" }],
    },
    {
      name: "offline_only",
      entities: ["driver"],
      source: "a_src",
      online: false,
      schema: [{ name: "x", dtype: "float32" }],
    },
  ],
};

const A_ROWS = `
INSERT INTO public.mat_a VALUES
  (1, '2024-01-01 10:00Z', '2024-01-01 10:00Z', 1.0, 10),
  (1, '2024-01-01 11:00Z', '2024-01-01 11:00Z', 2.0, 20),
  (1, '2024-01-01 11:00Z', '2024-01-01 11:30Z', 2.5, 25),
  (1, '2024-01-01 12:00Z', '2024-01-01 12:00Z', 3.0, 30),
  (2, '2024-01-01 09:00Z', '2024-01-01 09:00Z', 5.0, 50),
  (2, '2024-01-01 10:30Z', '2024-01-01 10:30Z', NULL, 55),
  (3, '2024-01-01 08:00Z', '2024-01-01 08:00Z', 7.0, 70),
  (4, '2024-01-01 12:30Z', '2024-01-01 12:30Z', 9.0, 90),
  (NULL, '2024-01-01 10:00Z', NULL, 0, 0);`;

async function readA(ids: number[]) {
  const snap = await t.deps.snapshots.get("m");
  const text = await t.online.getOnlineFeatures(
    snap,
    { features: ["a:x", "a:n"], entities: { driver_id: ids } },
    { maxEntityRows: 100 },
  );
  const body = JSON.parse(text);
  return { x: body.results[1].values, n: body.results[2].values, status: body.results[2].statuses };
}

async function readC(rows: [number, string][]) {
  const snap = await t.deps.snapshots.get("m");
  const text = await t.online.getOnlineFeatures(
    snap,
    { features: ["c:y"], entities: { driver_id: rows.map((r) => r[0]), customer_id: rows.map((r) => r[1]) } },
    { maxEntityRows: 100 },
  );
  return JSON.parse(text).results[2].values;
}

beforeAll(async () => {
  t = await createTestContext();
  pgc = new pg.Client({ connectionString: t.db.url });
  await pgc.connect();
  await pgc.query(`
    CREATE TABLE public.mat_a (driver_id bigint, ts timestamptz NOT NULL, created timestamptz, x real, n bigint);
    CREATE TABLE public.mat_c (driver_id bigint, customer_id text, ts timestamptz NOT NULL, y text);`);
  await pgc.query(A_ROWS);
  const res = await t.call("POST", "/v1/projects/m/apply", DEFS);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
});
afterAll(async () => {
  await pgc?.end();
  await t?.close();
});

const WINDOW = { start_ts: "2024-01-01T09:30:00Z", end_ts: "2024-01-01T12:00:00Z" };

describe("materialize a window", () => {
  it("loads each entity's latest row in [start, end) and answers the job", async () => {
    const res = await t.call("POST", "/v1/projects/m/materialize", { ...WINDOW, feature_views: ["a"] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const { jobs } = Jobs.parse(res.body);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({
      feature_view: "a",
      status: "succeeded",
      start_ts: "2024-01-01T09:30:00Z",
      end_ts: "2024-01-01T12:00:00Z",
      rows_read: 2, // drivers 1 and 2; 3 is before the window, 4 after it, the null key skipped
      rows_written: 2,
    });
    // driver 1: the 12:00 row is at the window's end (excluded); at 11:00 the later created wins
    const got = await readA([1, 2, 3, 4]);
    expect(got.x).toEqual([2.5, null, null, null]);
    expect(got.n).toEqual([25, 55, null, null]);
    expect(got.status).toEqual(["PRESENT", "PRESENT", "NOT_FOUND", "NOT_FOUND"]);
  });

  it("re-running the window changes nothing", async () => {
    const before = await readA([1, 2, 3, 4]);
    const res = await t.call("POST", "/v1/projects/m/materialize", { ...WINDOW, feature_views: ["a"] });
    expect(res.body.jobs[0]).toMatchObject({ status: "succeeded", rows_read: 2 });
    expect(await readA([1, 2, 3, 4])).toEqual(before);
    expect(before.n).toEqual([25, 55, null, null]);
  });

  it("a push newer than the window survives a later materialisation; newer rows replace older ones", async () => {
    const snap = await t.deps.snapshots.get("m");
    const view = snap.views.get("a")!;
    const at = Date.parse("2024-01-01T11:45:00Z") * 1000;
    await t.online.write(view, [{ key: ["1"], eventTs: at, createdTs: 0, values: [8.5, 85] }]);
    await t.online.write(view, [
      { key: ["2"], eventTs: Date.parse("2024-01-01T08:00:00Z") * 1000, createdTs: 0, values: [0.5, 5] },
    ]);
    const res = await t.call("POST", "/v1/projects/m/materialize", {
      start_ts: "2024-01-01T00:00:00Z",
      end_ts: "2024-01-02T00:00:00Z",
      feature_views: ["a"],
    });
    expect(res.body.jobs[0]).toMatchObject({ status: "succeeded", rows_read: 4 });
    const got = await readA([1, 2, 3, 4]);
    // driver 1: 12:00 is newer than the 11:45 push; driver 2: the window's row is newer than the 08:00 write
    expect(got.n).toEqual([30, 55, 70, 90]);
    // a push through the API, newer than the window, then the window again: the push stays
    const push = await t.call("POST", "/v1/projects/m/push", {
      push_source_name: "a_push",
      df: { driver_id: [3], ts: ["2024-01-03T00:00:00Z"], x: [1.5], n: [1] },
      to: "online",
    });
    expect(push.status, JSON.stringify(push.body)).toBe(200);
    const again = await t.call("POST", "/v1/projects/m/materialize", {
      start_ts: "2024-01-01",
      end_ts: "2024-01-02",
      feature_views: ["a"],
    });
    expect(again.body.jobs[0]).toMatchObject({ status: "succeeded", rows_read: 4 });
    expect(await readA([3])).toEqual({ x: [1.5], n: [1], status: ["PRESENT"] });
    expect((await readA([1, 2, 4])).n).toEqual([30, 55, 90]);
  });

  it("materialises every online view when none are named, not offline-only ones", async () => {
    const res = await t.call("POST", "/v1/projects/m/materialize", WINDOW);
    expect(res.status).toBe(200);
    expect(res.body.jobs.map((j: { feature_view: string }) => j.feature_view).sort()).toEqual(["a", "c"]);
  });

  it.each([
    [{ ...WINDOW, feature_views: ["nope"] }, /unknown feature view nope/],
    [{ ...WINDOW, feature_views: ["offline_only"] }, /not online/],
    [{ start_ts: "yesterday", end_ts: "2024-01-01", feature_views: ["a"] }, /start_ts/],
    [{ start_ts: "2024-01-02", end_ts: "2024-01-01", feature_views: ["a"] }, /before end_ts/],
    [{ start_ts: "2024-01-01", end_ts: "2024-01-01", feature_views: ["a"] }, /before end_ts/],
    [{ start_ts: "2024-01-01" }, /end_ts/],
    ["{not json", /JSON/],
  ])("refuses bad input with a 400 (%#)", async (body, pattern) => {
    const res = await t.call("POST", "/v1/projects/m/materialize", body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(pattern);
  });

  it("the root endpoint acts on the default project", async () => {
    const res = await t.call("POST", "/materialize", { ...WINDOW, feature_views: ["a"] });
    // nothing was applied to the default project ("default") here: an unknown project
    expect(res.status).toBe(404);
    expect(res.body.error.message).toMatch(/project default not found/);
  });
});

describe("materialize-incremental", () => {
  const now = Date.now();
  const iso = (msAgo: number) => new Date(now - msAgo).toISOString();
  const H = 3600_000;

  it("first run starts at end − ttl; later runs start where the last ended and pick up exactly the new rows", async () => {
    // an earlier test ran a window over c: forget it, so this is c's first run
    await t.deps.db.execute(sql`DELETE FROM larder.materialized_intervals WHERE feature_view = 'c'`);
    await pgc.query(
      `INSERT INTO public.mat_c VALUES (1,'c1',$1,'too old'), (1,'c1',$2,'c1-old'), (1,'c2',$3,'c2-old'), (2,'c1',$4,'d2')`,
      [iso(30 * H), iso(5 * H), iso(4 * H), iso(3 * H)],
    );
    const end1 = iso(2 * H);
    const r1 = await t.call("POST", "/v1/projects/m/materialize-incremental", { end_ts: end1, feature_views: ["c"] });
    expect(r1.status, JSON.stringify(r1.body)).toBe(200);
    expect(r1.body.jobs[0]).toMatchObject({ kind: "incremental", status: "succeeded", rows_read: 3 });
    expect(Date.parse(r1.body.jobs[0].start_ts)).toBe(Date.parse(end1) - 24 * H);
    expect(
      await readC([
        [1, "c1"],
        [1, "c2"],
        [2, "c1"],
      ]),
    ).toEqual(["c1-old", "c2-old", "d2"]);

    // new rows after end1, and one before it that incremental runs must not see
    await pgc.query(
      `INSERT INTO public.mat_c VALUES (1,'c1',$1,'c1-new'), (3,'c9',$2,'late arrival'), (3,'c9',$3,'d3')`,
      [iso(1 * H), iso(6 * H), iso(H / 2)],
    );
    const end2 = new Date(now).toISOString();
    const r2 = await t.call("POST", "/v1/projects/m/materialize-incremental", { end_ts: end2, feature_views: ["c"] });
    expect(r2.body.jobs[0]).toMatchObject({ status: "succeeded", rows_read: 2 });
    // the same instant (the answer drops trailing zeros of the fraction: .460Z comes back as .46Z)
    expect(Date.parse(r2.body.jobs[0].start_ts)).toBe(Date.parse(end1));
    expect(
      await readC([
        [1, "c1"],
        [1, "c2"],
        [2, "c1"],
        [3, "c9"],
      ]),
    ).toEqual(["c1-new", "c2-old", "d2", "d3"]);

    // nothing new: an empty job, recorded
    const r3 = await t.call("POST", "/v1/projects/m/materialize-incremental", { end_ts: end2, feature_views: ["c"] });
    expect(r3.body.jobs[0]).toMatchObject({ status: "succeeded", rows_read: 0 });
    expect(r3.body.jobs[0].start_ts).toBe(r3.body.jobs[0].end_ts);
  });

  it("a ttl-0 view's first incremental run takes everything", async () => {
    await t.deps.db.execute(sql`DELETE FROM larder.materialized_intervals WHERE feature_view = 'a'`);
    const r = await t.call("POST", "/v1/projects/m/materialize-incremental", {
      end_ts: "2030-01-01T00:00:00Z",
      feature_views: ["a"],
    });
    expect(r.body.jobs[0]).toMatchObject({ start_ts: "1970-01-01T00:00:00Z", rows_read: 4, status: "succeeded" });
  });
});

describe("jobs: failures, conflicts, the record", () => {
  beforeEach(async () => {
    await t.deps.db.execute(sql`UPDATE larder.materialization_jobs SET status = 'failed' WHERE status = 'running'`);
  });

  /** An online store whose `n`-th write fails (a Redis that fell over mid-job). */
  const failingOnWrite = (n: number): OnlineStore => {
    let writes = 0;
    return {
      ...t.online,
      write: async (view, rows) => {
        if (++writes === n) throw new Error("online store fell over");
        return t.online.write(view, rows);
      },
      getOnlineFeatures: t.online.getOnlineFeatures.bind(t.online),
      ping: () => t.online.ping(),
      recordPush: t.online.recordPush.bind(t.online),
      lastPushes: t.online.lastPushes.bind(t.online),
      close: async () => {},
    };
  };
  it("a job that fails half-way is recorded failed, and a re-run ends right", async () => {
    await pgc.query(`INSERT INTO public.mat_a SELECT 100 + g, '2025-01-01Z', NULL, g, g FROM generate_series(1, 10) g`);
    const snap = await t.deps.snapshots.get("m");
    // one write at a time: the second batch fails, nothing after it is written
    const m = new Materializer({
      db: t.deps.db,
      online: failingOnWrite(2),
      logger: silentLogger(),
      batchSize: 4,
      writeDepth: 1,
    });
    const req = { kind: "window" as const, start: "2025-01-01", end: "2025-01-02", views: ["a"] };
    const { jobs, failures } = await m.materialize(snap, req);
    expect(failures).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ status: "failed", rows_written: 4, error: "online store fell over" });
    expect(jobs[0]!.rows_read).toBeGreaterThanOrEqual(8);
    const half = await readA([101, 105, 110]);
    expect(half.status).toEqual(["PRESENT", "NOT_FOUND", "NOT_FOUND"]);

    const again = await new Materializer({
      db: t.deps.db,
      online: t.online,
      logger: silentLogger(),
      batchSize: 4,
    }).materialize(snap, req);
    expect(again.jobs[0]).toMatchObject({ status: "succeeded", rows_read: 10 });
    expect((await readA([101, 105, 110])).n).toEqual([1, 5, 10]);

    const listed = await t.call("GET", `/v1/projects/m/materialization-jobs?feature_view=a&limit=2`);
    expect(listed.status).toBe(200);
    expect(listed.body.jobs.map((j: { status: string }) => j.status)).toEqual(["succeeded", "failed"]);
    expect(listed.body.jobs[1].error).toBe("online store fell over");
  });

  it("with several writes in flight, a failed job records exactly the rows it wrote, and a re-run ends right", async () => {
    const TEN = [201, 202, 203, 204, 205, 206, 207, 208, 209, 210];
    await pgc.query(`INSERT INTO public.mat_a SELECT 200 + g, '2025-02-01Z', NULL, g, g FROM generate_series(1, 10) g`);
    const snap = await t.deps.snapshots.get("m");
    const req = { kind: "window" as const, start: "2025-02-01", end: "2025-02-02", views: ["a"] };
    const m = new Materializer({
      db: t.deps.db,
      online: failingOnWrite(2),
      logger: silentLogger(),
      batchSize: 2,
      writeDepth: 3,
    });
    const { jobs } = await m.materialize(snap, req);
    expect(jobs[0]).toMatchObject({ status: "failed", error: "online store fell over" });
    const got = await readA(TEN);
    const present = got.status.filter((s: string) => s === "PRESENT").length;
    expect(got.status.slice(2, 4)).toEqual(["NOT_FOUND", "NOT_FOUND"]); // the failed batch
    expect(jobs[0]!.rows_written).toBe(present);
    expect(present).toBeLessThan(10);

    const again = await new Materializer({ db: t.deps.db, online: t.online, logger: silentLogger() }).materialize(
      snap,
      req,
    );
    expect(again.jobs[0]).toMatchObject({ status: "succeeded", rows_read: 10, rows_written: 10 });
    expect((await readA(TEN)).n).toEqual(TEN.map((id) => id - 200));
  });

  it("a job whose process is killed half-way stays recorded (409 meanwhile), and a re-run ends right", async () => {
    // 60,000 entities of view a in a window of their own, materialised by the real CLI, killed (SIGKILL) mid-job
    const N = 60_000;
    const first = 1_000_001;
    const last = first + N - 1;
    await pgc.query(
      `INSERT INTO public.mat_a SELECT ${first - 1} + g, '2026-03-01Z', NULL, g, g FROM generate_series(1, ${N}) g`,
    );
    const child = spawn(process.execPath, [LARDER_BIN, "materialize", "2026-03-01", "2026-03-02", "--views", "a"], {
      cwd: ROOT,
      env: cleanEnv({
        DATABASE_URL: t.db.url,
        REDIS_URL: TEST_REDIS_URL,
        LARDER_REDIS_PREFIX: t.prefix,
        LARDER_PROJECT: "m",
      }),
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // kill it as soon as its first batch is in the online store
    const deadline = Date.now() + 30_000;
    while ((await readA([first])).status[0] !== "PRESENT") {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the CLI ended first (${child.exitCode})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill("SIGKILL");
    await exited;
    expect((await readA([last])).status).toEqual(["NOT_FOUND"]); // it really was half-way

    // the record: the job is there, still running (nobody could record its end); the view answers 409 meanwhile
    const listed = await t.call("GET", "/v1/projects/m/materialization-jobs?feature_view=a&limit=1");
    expect(listed.body.jobs[0]).toMatchObject({ status: "running", start_ts: "2026-03-01T00:00:00Z" });
    const killedId = listed.body.jobs[0].id;
    const busy = await t.call("POST", "/v1/projects/m/materialize", {
      start_ts: "2026-03-01",
      end_ts: "2026-03-02",
      feature_views: ["a"],
    });
    expect(busy.status).toBe(409);
    expect(busy.body.error.message).toMatch(/already being materialised/);

    // once its heartbeat is stale the job is marked failed (abandoned), and a re-run completes the window
    const snap = await t.deps.snapshots.get("m");
    const m = new Materializer({ db: t.deps.db, online: t.online, logger: silentLogger(), staleAfterMs: 200 });
    await new Promise((r) => setTimeout(r, 400));
    const again = await m.materialize(snap, { kind: "window", start: "2026-03-01", end: "2026-03-02", views: ["a"] });
    expect(again.jobs[0]).toMatchObject({ status: "succeeded", rows_read: N, rows_written: N });
    const killed = await t.call("GET", `/v1/projects/m/materialization-jobs/${killedId}`);
    expect(killed.body).toMatchObject({ status: "failed", error: expect.stringMatching(/abandoned/) });
    const mid = first + Math.floor(N / 2);
    expect((await readA([first, mid, last])).n).toEqual([1, mid - first + 1, N]);
  });

  it("answers 409 while a view is being materialised; an abandoned job does not block forever", async () => {
    const [job] = rowsOf<{ id: string }>(
      await t.deps.db.execute(sql`
        INSERT INTO larder.materialization_jobs (project, feature_view, kind, start_ts, end_ts, status, owner)
        VALUES ('m', 'a', 'window', now(), now(), 'running', 'elsewhere') RETURNING id::text AS id`),
    );
    const busy = await t.call("POST", "/v1/projects/m/materialize", { ...WINDOW, feature_views: ["a", "c"] });
    expect(busy.status).toBe(409);
    expect(busy.body.error.message).toMatch(/feature view a is already being materialised/);
    // nothing half-started: c has no running job
    const c = await t.call("GET", "/v1/projects/m/materialization-jobs?feature_view=c&limit=1");
    expect(c.body.jobs[0].status).not.toBe("running");

    await t.deps.db.execute(
      sql`UPDATE larder.materialization_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = ${job!.id}::uuid`,
    );
    const res = await t.call("POST", "/v1/projects/m/materialize", { ...WINDOW, feature_views: ["a"] });
    expect(res.status).toBe(200);
    const old = await t.call("GET", `/v1/projects/m/materialization-jobs/${job!.id}`);
    expect(old.body).toMatchObject({ status: "failed", error: expect.stringMatching(/abandoned/) });
  });

  it("two concurrent starts of the same view: exactly one wins", async () => {
    const snap = await t.deps.snapshots.get("m");
    const m = new Materializer({ db: t.deps.db, online: t.online, logger: silentLogger() });
    const req = { kind: "window" as const, start: "2024-01-01", end: "2024-01-02", views: ["a"] };
    const results = await Promise.allSettled([m.start(snap, req), m.start(snap, req), m.start(snap, req)]);
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect((r.reason as { code?: string }).code).toBe("conflict");
    const w = won[0] as PromiseFulfilledResult<Awaited<ReturnType<Materializer["start"]>>>;
    const info = await m.run(w.value.started[0]!);
    expect(info.status).toBe("succeeded");
  });

  it("a job split in partitions: disjoint slices that cover every entity, each recorded", async () => {
    const snap = await t.deps.snapshots.get("m");
    await pgc.query(
      `INSERT INTO public.mat_a SELECT 5000000 + g, '2027-01-01Z', NULL, g, g FROM generate_series(1, 300) g`,
    );
    const m = new Materializer({ db: t.deps.db, online: t.online, logger: silentLogger(), owner: "test:parts" });
    const req = { kind: "window" as const, start: "2027-01-01", end: "2027-01-02", views: ["a"] };
    const whole = await m.materialize(snap, req);
    const { started, jobs } = await m.start(snap, req, { partitions: 3 });
    expect(jobs[0]!.status).toBe("running");
    expect(jobs[0]!.partitions.map((p) => [p.index, p.status, p.attempts])).toEqual([
      [0, "queued", 0],
      [1, "queued", 0],
      [2, "queued", 0],
    ]);
    const info = await m.run(started[0]!);
    expect(info.status).toBe("succeeded");
    expect(whole.jobs[0]!.rows_read).toBe(300);
    expect(info.rows_read).toBe(300);
    expect(info.partitions).toHaveLength(3);
    for (const p of info.partitions) {
      expect(p).toMatchObject({ status: "succeeded", worker: "test:parts", attempts: 1, error: null });
      // each slice holds a share of the entities, none holds them all
      expect(p.rows_read).toBeGreaterThan(0);
      expect(p.rows_read).toBeLessThan(info.rows_read);
    }
    expect(info.partitions.reduce((n, p) => n + p.rows_read, 0)).toBe(info.rows_read);
    const got = await t.call("GET", `/v1/projects/m/materialization-jobs/${info.id}`);
    expect(Jobs.shape.jobs.element.parse(got.body)).toEqual(info);
  });

  it("a cancelled job ends cancelled, and its partitions are not run", async () => {
    const snap = await t.deps.snapshots.get("m");
    const m = new Materializer({ db: t.deps.db, online: t.online, logger: silentLogger() });
    const { started } = await m.start(
      snap,
      { kind: "window", start: "2024-01-01", end: "2024-01-02", views: ["a"] },
      {
        partitions: 2,
      },
    );
    const cancelled = await m.jobs.cancel(started[0]!.id, "m");
    expect(cancelled).toMatchObject({ status: "cancelled", finished_at: expect.any(String) });
    expect(cancelled!.partitions.map((p) => p.status)).toEqual(["cancelled", "cancelled"]);
    const info = await m.run(started[0]!);
    expect(info.status).toBe("cancelled");
    expect(info.partitions.every((p) => p.attempts === 0)).toBe(true);
    // the view is free again
    const res = await t.call("POST", "/v1/projects/m/materialize", { ...WINDOW, feature_views: ["a"] });
    expect(res.status).toBe(200);
  });

  it("a job queued for longer than 32 bits of milliseconds (24.8 days) can still be cancelled, its duration kept", async () => {
    const [job] = rowsOf<{ id: string }>(
      await t.deps.db.execute(sql`
        INSERT INTO larder.materialization_jobs (project, feature_view, kind, start_ts, end_ts, status, owner, queued, created_at)
        VALUES ('m', 'a', 'window', now(), now(), 'queued', 'elsewhere', true, now() - interval '30 days')
        RETURNING id::text AS id`),
    );
    const res = await t.call("DELETE", `/v1/projects/m/materialization-jobs/${job!.id}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.status).toBe("cancelled");
    expect(res.body.duration_ms).toBeGreaterThanOrEqual(30 * 86_400_000);
    expect(res.body.duration_ms).toBeLessThan(31 * 86_400_000);
  });

  it("?async=true answers 202 at once; the job ends in the record", async () => {
    const res = await t.call("POST", "/v1/projects/m/materialize?async=true", { ...WINDOW, feature_views: ["a"] });
    expect(res.status).toBe(202);
    expect(res.body.jobs[0].status).toBe("running");
    const id = res.body.jobs[0].id;
    let status = "running";
    for (let i = 0; i < 100 && status === "running"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await t.call("GET", `/v1/projects/m/materialization-jobs/${id}`)).body.status;
    }
    expect(status).toBe("succeeded");
    const list = await t.call("GET", "/v1/projects/m/materialization-jobs");
    expect(list.body.jobs[0].id).toBe(id);
    expect(
      (await t.call("GET", "/v1/projects/m/materialization-jobs/00000000-0000-0000-0000-000000000000")).status,
    ).toBe(404);
  });
});
