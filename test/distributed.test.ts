/**
 * Distributed materialisation with real processes: a `larder serve` and two `larder worker`s share one Postgres (the
 * queue) and one Redis. Heartbeats and staleness are shortened (LARDER_PARTITION_*), so a lost worker is noticed in
 * seconds; schedules are tested with a six-field (seconds) cron expression, the same code path as a per-minute one.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Job } from "../src/http/routes/offline.ts";
import { isFinal, type MaterializationJob } from "../src/offline/job.ts";
import { createTestContext, type TestContext } from "./support/app.ts";
import { type ServerProcess, startServerProcess, startWorkerProcess, type WorkerProcess } from "./support/process.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";
import { serverApi } from "./support/server-api.ts";

let t: TestContext;
let pgc: pg.Client;
let server: ServerProcess;
let workers: WorkerProcess[] = [];
let env: Record<string, string>;

const ENTITIES = 40_000;

const DEFS = {
  entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
  data_sources: [
    { name: "big_src", kind: "postgres", table: "public.big", timestamp_field: "ts" },
    { name: "small_src", kind: "postgres", table: "public.small", timestamp_field: "ts" },
  ],
  feature_views: [
    {
      name: "big",
      entities: ["driver"],
      source: "big_src",
      ttl: 0,
      schema: [
        { name: "x", dtype: "int64" },
        { name: "y", dtype: "float64" },
      ],
    },
    {
      name: "small",
      entities: ["driver"],
      source: "small_src",
      ttl: 0,
      schema: [{ name: "v", dtype: "int64" }],
    },
  ],
};

const { api, job } = serverApi(() => server.url, "d");

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every entity of view big: the online answer equals the offline latest row (what one process leaves). */
async function expectOnlineEqualsOffline() {
  const offline = await pgc.query<{ driver_id: string; x: string; y: number }>(
    "SELECT DISTINCT ON (driver_id) driver_id, x, y FROM public.big ORDER BY driver_id, ts DESC",
  );
  expect(offline.rows).toHaveLength(ENTITIES);
  await t.deps.snapshots.reload("d");
  const snap = await t.deps.snapshots.get("d");
  for (let i = 0; i < offline.rows.length; i += 1000) {
    const rows = offline.rows.slice(i, i + 1000);
    const text = await t.online.getOnlineFeatures(
      snap,
      { features: ["big:x", "big:y"], entities: { driver_id: rows.map((r) => Number(r.driver_id)) } },
      { maxEntityRows: 1000 },
    );
    const body = JSON.parse(text);
    expect(body.results[1].values).toEqual(rows.map((r) => Number(r.x)));
    expect(body.results[2].values).toEqual(rows.map((r) => r.y));
  }
}

beforeAll(async () => {
  t = await createTestContext();
  pgc = new pg.Client({ connectionString: t.db.url });
  await pgc.connect();
  // two rows per entity (the later one wins), plus a third, older, for every tenth
  await pgc.query(`
    CREATE TABLE public.big (driver_id bigint, ts timestamptz NOT NULL, x bigint, y double precision);
    INSERT INTO public.big SELECT g, '2025-01-01Z'::timestamptz + (g % 7) * interval '1 minute', g, g / 2.0
      FROM generate_series(1, ${ENTITIES}) g;
    INSERT INTO public.big SELECT g, '2025-01-02Z', g * 10, g / 4.0 FROM generate_series(1, ${ENTITIES}) g;
    INSERT INTO public.big SELECT g, '2024-12-31Z', -g, 0 FROM generate_series(1, ${ENTITIES}, 10) g;
    CREATE TABLE public.small (driver_id bigint, ts timestamptz NOT NULL, v bigint);
    INSERT INTO public.small SELECT g, now() - interval '1 hour', g FROM generate_series(1, 50) g;`);
  const applied = await t.call("POST", "/v1/projects/d/apply", DEFS);
  expect(applied.status, JSON.stringify(applied.body)).toBe(200);
  env = {
    DATABASE_URL: t.db.url,
    REDIS_URL: TEST_REDIS_URL,
    LARDER_REDIS_PREFIX: t.prefix,
    LARDER_AUTH: "disabled",
    LARDER_LOG_LEVEL: "info",
    LARDER_PARTITION_HEARTBEAT_MS: "250",
    LARDER_PARTITION_STALE_MS: "2000",
    LARDER_SCHEDULE_POLL_MS: "200",
    LARDER_REGISTRY_POLL_MS: "200",
    // small batches: a partition takes long enough to be caught half-way (with 100, and once with 20, a quiet
    // machine's workers finished every 10,000-row partition between two looks of the test)
    LARDER_MATERIALIZE_BATCH_SIZE: "5",
  };
  // generous: on a loaded machine a process takes tens of seconds to start (a quiet one: a few)
  [server, ...workers] = await Promise.all([
    startServerProcess(env, 150_000),
    startWorkerProcess(env, 150_000),
    startWorkerProcess(env, 150_000),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all([server?.stop(), ...workers.map((w) => w.stop())]);
  await pgc?.end();
  await t?.close();
});

const WINDOW = { start_ts: "2024-01-01T00:00:00Z", end_ts: "2026-01-01T00:00:00Z", feature_views: ["big"] };

describe("definitions", () => {
  it("a bad cron expression or partition count is a definitions error naming it; nothing is applied", async () => {
    const bad = {
      ...DEFS,
      feature_views: DEFS.feature_views.map((v) =>
        v.name === "small" ? { ...v, materialization: { schedule: "*/15 * * *", partitions: 0 } } : v,
      ),
    };
    const res = await t.call("POST", "/v1/projects/d/plan", bad);
    expect(res.status).toBe(400);
    const details = res.body.error.details as { path: string; message: string }[];
    expect(details).toContainEqual({
      path: "feature_views[1].materialization.schedule",
      message: expect.stringContaining('schedule "*/15 * * *" is not a cron expression'),
    });
    expect(details).toContainEqual({
      path: "feature_views[1].materialization.partitions",
      message: expect.stringContaining("at least 1"),
    });
    const range = await t.call("POST", "/v1/projects/d/plan", {
      ...DEFS,
      feature_views: DEFS.feature_views.map((v) =>
        v.name === "small" ? { ...v, materialization: { schedule: "0 25 * * *" } } : v,
      ),
    });
    expect(range.status).toBe(400);
    expect(JSON.stringify(range.body)).toMatch(/schedule \\"0 25 \* \* \*\\" is not a cron expression/);
  });
});

// every step waits on real processes: generous bounds for a loaded machine
describe("distributed materialisation", { timeout: 120_000 }, () => {
  it("a 4-partition job: every partition done by some process, the online store equal to the offline latest rows", async () => {
    const res = await api("POST", "/v1/projects/d/materialize", { ...WINDOW, partitions: 4 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [done] = res.body.jobs.map((j: unknown) => Job.parse(j));
    expect(done).toMatchObject({ status: "succeeded", rows_read: ENTITIES, rows_written: ENTITIES, error: null });
    expect(done.partitions.map((p: { index: number }) => p.index)).toEqual([0, 1, 2, 3]);
    for (const p of done.partitions) {
      expect(p).toMatchObject({ status: "succeeded", error: null, attempts: 1 });
      expect(p.worker).toMatch(/:\d+$/);
    }
    const pids = new Set(done.partitions.map((p: { worker: string }) => Number(p.worker.split(":").pop())));
    for (const pid of pids) expect([server.child.pid, ...workers.map((w) => w.pid)]).toContain(pid);
    await expectOnlineEqualsOffline();
    // the server reports the work of every process: nothing queued or running now
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^larder_materialization_queue_depth 0$/m);
    expect(metrics).toMatch(/^larder_materialization_partitions\{status="running"\} 0$/m);
    expect(metrics).toMatch(/^larder_materialization_partitions\{status="queued"\} 0$/m);
  });

  it("SIGKILL a worker half-way through its partition: another takes it over, and the job still ends exactly", async () => {
    // a clean online store, so values written before the kill cannot stand in for the re-run's
    await t.redis.eval(
      "for _, k in ipairs(redis.call('keys', ARGV[1] .. '*')) do redis.call('del', k) end",
      0,
      t.prefix,
    );
    const res = await api("POST", "/v1/projects/d/materialize?async=true", { ...WINDOW, partitions: 4 });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const id = res.body.jobs[0].id as string;
    const owners = new Map(workers.map((w) => [w.pid, w]));
    // a partition that a worker (not the server) is running, with rows already written
    const caught = await until(
      "a worker half-way through a partition",
      () => job(id),
      (j) =>
        isFinal(j.status) ||
        j.partitions.some(
          (p) => p.status === "running" && p.rows_written > 0 && owners.has(Number(p.worker?.split(":").pop())),
        ),
      30_000,
    );
    expect(caught.status).toBe("running");
    const victim = caught.partitions.find(
      (p) => p.status === "running" && p.rows_written > 0 && owners.has(Number(p.worker?.split(":").pop())),
    )!;
    const killed = owners.get(Number(victim.worker!.split(":").pop()))!;
    killed.child.kill("SIGKILL");
    await killed.stop();
    workers = workers.filter((w) => w !== killed);

    const ended = await until(
      "the job to end",
      () => job(id),
      (j) => isFinal(j.status),
      45_000,
    );
    expect(ended).toMatchObject({ status: "succeeded", rows_read: ENTITIES, error: null });
    const retried = ended.partitions[victim.index]!;
    expect(retried.status).toBe("succeeded");
    expect(retried.attempts).toBe(2);
    expect(retried.worker).not.toBe(victim.worker);
    await expectOnlineEqualsOffline();
  });

  it("a cancelled job stops: its partitions end cancelled and nothing runs on", async () => {
    const res = await api("POST", "/v1/projects/d/materialize?async=true", { ...WINDOW, partitions: 4 });
    expect(res.status).toBe(202);
    const id = res.body.jobs[0].id as string;
    const running = await until(
      "a partition running with rows written",
      () => job(id),
      (j) => j.partitions.some((p) => p.status === "running" && p.rows_written > 0),
    );
    // rows/s of the process running it, as every server reports it
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const busy = running.partitions.find((p) => p.status === "running")!.worker!;
    expect(metrics).toContain(`larder_materialization_worker_rows_per_second{worker="${busy}"}`);
    expect(metrics).toMatch(/^larder_materialization_partitions\{status="running"\} [1-9]/m);
    const cancel = await api("DELETE", `/v1/projects/d/materialization-jobs/${id}`);
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
    expect(cancel.body.status).toBe("cancelled");
    const after = await job(id);
    expect(after.status).toBe("cancelled");
    expect(after.partitions.some((p) => p.status === "cancelled")).toBe(true);
    expect(after.partitions.every((p) => p.status === "cancelled" || p.status === "succeeded")).toBe(true);
    // the processes that were running its partitions stop within a heartbeat or two: the rows stop moving
    await new Promise((r) => setTimeout(r, 1500));
    const rowsThen = (
      await pgc.query("SELECT sum(rows_read)::int AS n FROM larder.materialization_partitions WHERE job_id = $1", [id])
    ).rows[0].n;
    await new Promise((r) => setTimeout(r, 1000));
    const rowsNow = (
      await pgc.query("SELECT sum(rows_read)::int AS n FROM larder.materialization_partitions WHERE job_id = $1", [id])
    ).rows[0].n;
    expect(rowsNow).toBe(rowsThen);
    // the view is free again, and a cancelled job cannot be cancelled into anything else
    expect((await api("DELETE", `/v1/projects/d/materialization-jobs/${id}`)).status).toBe(200);
    const done = await api("POST", "/v1/projects/d/materialize", { ...WINDOW, partitions: 2 });
    expect(done.status).toBe(200);
    expect((await api("DELETE", `/v1/projects/d/materialization-jobs/${done.body.jobs[0].id}`)).status).toBe(409);
  });

  it("a schedule runs materialize-incremental once per tick across three processes, never two runs at once", async () => {
    const scheduled = {
      ...DEFS,
      feature_views: DEFS.feature_views.map((v) =>
        v.name === "small" ? { ...v, materialization: { schedule: "*/2 * * * * *", partitions: 2 } } : v,
      ),
    };
    const plan = await api("POST", "/v1/projects/d/plan", scheduled);
    expect(JSON.stringify(plan.body)).toContain("materialization");
    expect((await api("POST", "/v1/projects/d/apply", scheduled)).status).toBe(200);
    const view = await api("GET", "/v1/projects/d/feature-views/small");
    expect(JSON.stringify(view.body)).toContain("*/2 * * * * *");
    await new Promise((r) => setTimeout(r, 9000));
    expect((await api("POST", "/v1/projects/d/apply", DEFS)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500)); // a sweep that read the old definitions may still start one

    const ticks = (
      await pgc.query<{ tick: string; outcome: string; worker: string }>(
        `SELECT to_char(tick_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS tick, outcome, worker
           FROM larder.materialization_ticks WHERE project = 'd' AND feature_view = 'small' ORDER BY tick_at`,
      )
    ).rows;
    const jobs = (await api("GET", "/v1/projects/d/materialization-jobs?feature_view=small")).body
      .jobs as MaterializationJob[];
    // one job per tick taken, each ending at its tick, never two for one tick
    const started = ticks.filter((x) => x.outcome === "started");
    expect(started.length).toBeGreaterThanOrEqual(3);
    expect(jobs.map((j) => j.end_ts).sort()).toEqual(started.map((x) => x.tick));
    expect(new Set(jobs.map((j) => j.end_ts)).size).toBe(jobs.length);
    // consecutive ticks two seconds apart: none missed while the schedule stood
    for (let i = 1; i < ticks.length; i++)
      expect(Date.parse(ticks[i]!.tick) - Date.parse(ticks[i - 1]!.tick)).toBe(2000);
    for (const j of jobs) {
      expect(j).toMatchObject({ kind: "incremental", status: "succeeded" });
      expect(j.partitions).toHaveLength(2);
    }
    // runs of the view never overlapped
    const spans = jobs
      .map((j) => [Date.parse(j.created_at), Date.parse(j.finished_at!)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    // the first run loaded the rows; the later ones found nothing new
    expect(jobs.reduce((n, j) => n + j.rows_read, 0)).toBe(50);
  });
});
