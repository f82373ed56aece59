/**
 * A server with LARDER_WORKER_CONCURRENCY=0 serves only: every materialisation, split or not, goes to the queue and is
 * run by a real `larder worker` process; the server never reads a source itself. A synchronous request waits for the
 * job (bounded: when no process takes it within the request timeout it answers 202 with the job still queued).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Job } from "../src/http/routes/offline.ts";
import { isFinal, type MaterializationJob } from "../src/offline/job.ts";
import { createTestContext, type TestContext } from "./support/app.ts";
import {
  freePort,
  type ServerProcess,
  startServerProcess,
  startWorkerProcess,
  type WorkerProcess,
} from "./support/process.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";
import { serverApi } from "./support/server-api.ts";

let t: TestContext;
let server: ServerProcess;
let worker: WorkerProcess | undefined;
let env: Record<string, string>;
let workerMetrics: string;

const DEFS = {
  entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
  data_sources: [{ name: "src", kind: "postgres", table: "public.so", timestamp_field: "ts" }],
  feature_views: [
    { name: "a", entities: ["driver"], source: "src", ttl: 0, schema: [{ name: "x", dtype: "int64" }] },
    { name: "b", entities: ["driver"], source: "src", ttl: 0, schema: [{ name: "x", dtype: "int64" }] },
  ],
};
const WINDOW = { start_ts: "2024-01-01T00:00:00Z", end_ts: "2026-01-01T00:00:00Z" };

const { api, job } = serverApi(() => server.url, "so");

async function online(view: string, ids: number[]): Promise<unknown[]> {
  const res = await api("POST", "/v1/projects/so/online-features", {
    features: [`${view}:x`],
    entities: { driver_id: ids },
  });
  expect(res.status).toBe(200);
  return res.body.results[1].values;
}

beforeAll(async () => {
  t = await createTestContext();
  const c = new pg.Client({ connectionString: t.db.url });
  await c.connect();
  await c.query(`CREATE TABLE public.so (driver_id bigint, ts timestamptz NOT NULL, x bigint);
    INSERT INTO public.so SELECT g, '2025-01-01Z', g * 3 FROM generate_series(1, 200) g;`);
  await c.end();
  const applied = await t.call("POST", "/v1/projects/so/apply", DEFS);
  expect(applied.status, JSON.stringify(applied.body)).toBe(200);
  env = {
    DATABASE_URL: t.db.url,
    REDIS_URL: TEST_REDIS_URL,
    LARDER_REDIS_PREFIX: t.prefix,
    LARDER_AUTH: "disabled",
    LARDER_WORKER_CONCURRENCY: "0",
    LARDER_REQUEST_TIMEOUT_MS: "5000",
    LARDER_PARTITION_HEARTBEAT_MS: "250",
    LARDER_REGISTRY_POLL_MS: "200",
  };
  server = await startServerProcess(env, 150_000);
}, 180_000);

afterAll(async () => {
  await Promise.all([server?.stop(), worker?.stop()]);
  await t?.close();
});

describe("a server with LARDER_WORKER_CONCURRENCY=0", () => {
  it("queues an unsplit job rather than run it; a synchronous request answers 202 when nothing takes it in time", async () => {
    const t0 = Date.now();
    const res = await api("POST", "/v1/projects/so/materialize", { ...WINDOW, feature_views: ["a"] });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
    const queued = Job.parse(res.body.jobs[0]);
    expect(queued.status).toBe("queued");
    expect(queued.partitions).toEqual([expect.objectContaining({ index: 0, status: "queued", attempts: 0 })]);
    expect(await online("a", [1, 2])).toEqual([null, null]);

    // a worker that comes later runs it
    const metricsPort = await freePort();
    workerMetrics = `http://127.0.0.1:${metricsPort}`;
    worker = await startWorkerProcess(
      { ...env, LARDER_WORKER_CONCURRENCY: "1", LARDER_WORKER_METRICS_PORT: String(metricsPort) },
      150_000,
    );
    const deadline = Date.now() + 60_000;
    let done = await job(queued.id);
    while (!isFinal(done.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      done = await job(queued.id);
    }
    expect(done).toMatchObject({ status: "succeeded", rows_read: 200, rows_written: 200 });
    expect(done.partitions[0]!.worker).toMatch(new RegExp(`:${worker.pid}$`));
    expect(await online("a", [1, 200])).toEqual([3, 600]);
  }, 240_000);

  it("a synchronous request waits for the worker's run and answers 200 as before; ?async=true answers 202 at once", async () => {
    const sync = await api("POST", "/v1/projects/so/materialize", { ...WINDOW, feature_views: ["b"] });
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
    const ran = Job.parse(sync.body.jobs[0]);
    expect(ran).toMatchObject({ status: "succeeded", rows_read: 200, rows_written: 200 });
    expect(ran.partitions.map((p) => p.worker)).toEqual([expect.stringMatching(new RegExp(`:${worker!.pid}$`))]);
    expect(await online("b", [7])).toEqual([21]);

    const started = await api("POST", "/v1/projects/so/materialize-incremental?async=true", {
      end_ts: "2026-06-01T00:00:00Z",
      feature_views: ["a"],
    });
    expect(started.status).toBe(202);
    const id = Job.parse(started.body.jobs[0]).id;
    const deadline = Date.now() + 60_000;
    let done = await job(id);
    while (!isFinal(done.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      done = await job(id);
    }
    expect(done.status).toBe("succeeded");
    expect(done.partitions[0]!.worker).toMatch(new RegExp(`:${worker!.pid}$`));
  }, 120_000);

  it("the worker's GET /metrics counts the jobs it ran (the server's cannot: it ran none); GET /health answers", async () => {
    const text = await (await fetch(`${workerMetrics}/metrics`)).text();
    const sample = (name: string, labels: string) =>
      Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, "m").exec(text)?.[1]);
    // a: the window job (200 rows) and the incremental one (nothing new); b: the synchronous one
    expect(sample("larder_materialization_rows_total", 'project="so",feature_view="a",kind="written"')).toBe(200);
    expect(sample("larder_materialization_rows_total", 'project="so",feature_view="b",kind="read"')).toBe(200);
    const jobs = "larder_materialization_job_duration_seconds_count";
    expect(sample(jobs, 'project="so",feature_view="a",status="succeeded"')).toBe(2);
    expect(sample(jobs, 'project="so",feature_view="b",status="succeeded"')).toBe(1);
    // what every server exports too: the queue across processes, and the process's own figures
    expect(text).toMatch(/^larder_materialization_queue_depth 0$/m);
    expect(text).toMatch(/^larder_process_cpu_seconds_total /m);
    const served = await (await fetch(`${server.url}/metrics`)).text();
    expect(served).not.toMatch(/^larder_materialization_rows_total\{/m);

    const health = await fetch(`${workerMetrics}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({
      status: "ok",
      worker: expect.stringMatching(new RegExp(`:${worker!.pid}$`)),
    });
    expect((await fetch(`${workerMetrics}/v1/projects`)).status).toBe(404); // nothing but these two
    // a scraper's kept-alive connection (fetch keeps them) does not hold the worker's stop up
    expect(await worker!.stop()).toBe(0);
  });
});
