/**
 * SIGTERM (SIGINT, SIGHUP alike) to a real server: it stops accepting, answers what is in flight, ends a running
 * materialisation after its current batch (recorded as failed; a re-run completes it), writes its last log lines, and
 * exits 0.
 */
import { rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, EXAMPLE_DEFINITIONS, loadExampleData, type TestDatabase } from "./support/db.ts";
import { runCli, type ServerProcess, startServerProcess } from "./support/process.ts";
import { clearPrefix, newRedis, TEST_REDIS_URL, testPrefix } from "./support/redis.ts";

let db: TestDatabase;
const prefix = testPrefix();
const N = 400_000;
let env: Record<string, string>;
let definitionsFile: string | undefined;

const BIG = `
entities:
  - { name: thing, join_key: thing_id, value_type: int64 }
data_sources:
  - { name: big_src, kind: postgres, table: public.big, timestamp_field: ts }
feature_views:
  - name: big
    entities: [thing]
    source: big_src
    ttl: 0
    schema: [{ name: v, dtype: int64 }, { name: w, dtype: float64 }]
`;

beforeAll(async () => {
  db = await createTestDatabase();
  await loadExampleData(db.url);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query(
    `CREATE TABLE public.big AS SELECT g::bigint AS thing_id, '2026-01-01Z'::timestamptz AS ts, g::bigint AS v, g / 2.0 AS w FROM generate_series(1, ${N}) g`,
  );
  await c.query("CREATE INDEX ON public.big (thing_id, ts DESC)");
  await c.end();
  definitionsFile = path.join(os.tmpdir(), `larder-shutdown-${process.pid}.yaml`);
  const file = definitionsFile;
  writeFileSync(file, BIG);
  env = { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, LARDER_REDIS_PREFIX: prefix, LARDER_AUTH: "disabled" };
  for (const [f, p] of [
    [EXAMPLE_DEFINITIONS, "default"],
    [file, "big"],
  ] as const) {
    const r = await runCli(["apply", "-f", f, "-p", p], env);
    expect(r.code, r.stderr).toBe(0);
  }
}, 60_000);

afterAll(async () => {
  if (definitionsFile) rmSync(definitionsFile, { force: true });
  const r = newRedis();
  await clearPrefix(r, prefix);
  r.disconnect();
  await db?.drop();
});

const post = (s: ServerProcess, p: string, body: unknown) =>
  fetch(`${s.url}${p}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

it("answers the requests in flight, then exits 0 and accepts nothing more", async () => {
  const server = await startServerProcess(env);
  // requests that take a while inside the server (a point-in-time join of 20,000 entity rows), so they are surely
  // accepted and running when the signal comes
  const ids = Array.from({ length: 20_000 }, (_, i) => i + 1);
  const body = {
    entity_df: { thing_id: ids, event_timestamp: ids.map(() => "2026-01-05T00:00:00Z") },
    features: ["big:v"],
  };
  const answeredAt: number[] = [];
  const inFlight = Array.from({ length: 8 }, () =>
    post(server, "/v1/projects/big/historical-features", body).then((res) => {
      answeredAt.push(Date.now());
      return res;
    }),
  );
  await new Promise((r) => setTimeout(r, 300));
  const signalledAt = Date.now();
  const exit = server.stop("SIGTERM");
  const answers = await Promise.all(inFlight);
  // they really were in flight: answered after the signal
  expect(
    answeredAt.filter((t) => t > signalledAt).length,
    "answered before the signal: make them slower",
  ).toBeGreaterThan(0);
  for (const res of answers) {
    expect(res.status).toBe(200);
    const df = ((await res.json()) as { df: { v: number[] } }).df;
    expect(df.v).toEqual(ids);
  }
  expect(await exit).toBe(0);
  await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  expect(server.output()).toMatch(/"msg":"stopping/);
  expect(server.output()).toMatch(/"msg":"stopped"/);
});

it("ends a running materialisation after its current batch, recorded as failed; a re-run completes it", async () => {
  let server = await startServerProcess(env);
  const window = { start_ts: "2026-01-01T00:00:00Z", end_ts: "2026-01-02T00:00:00Z" };
  const started = await post(server, "/v1/projects/big/materialize?async=true", window);
  expect(started.status).toBe(202);
  const jobId = ((await started.json()) as { jobs: { id: string }[] }).jobs[0]!.id;
  // stop while it runs: its counts are recorded at the end, so wait for it to be running, then give it a moment
  const job = async () =>
    (await (await fetch(`${server.url}/v1/projects/big/materialization-jobs/${jobId}`)).json()) as {
      status: string;
      rows_written: number;
      error: string | null;
    };
  const deadline = Date.now() + 30_000;
  while ((await job()).status !== "running") {
    if (Date.now() > deadline) throw new Error("the job did not start in 30 s");
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  expect(await server.stop("SIGTERM")).toBe(0);
  expect(Date.now() - t0).toBeLessThan(15_000);

  server = await startServerProcess(env);
  try {
    const recorded = await job();
    expect(recorded.status).toBe("failed");
    expect(recorded.error).toMatch(/interrupted/);
    expect(recorded.rows_written).toBeGreaterThan(0);
    expect(recorded.rows_written).toBeLessThan(N);

    const rerun = await post(server, "/v1/projects/big/materialize", window);
    expect(rerun.status).toBe(200);
    const body = (await rerun.json()) as { jobs: { status: string; rows_read: number }[] };
    expect(body.jobs[0]).toMatchObject({ status: "succeeded", rows_read: N });
    const res = await post(server, "/v1/projects/big/online-features", {
      features: ["big:v", "big:w"],
      entities: { thing_id: [1, N] },
    });
    const answer = (await res.json()) as { results: { values: unknown[]; statuses: string[] }[] };
    expect(answer.results[1]).toMatchObject({ values: [1, N], statuses: ["PRESENT", "PRESENT"] });
    expect(answer.results[2]!.values).toEqual([0.5, N / 2]);
  } finally {
    await server.stop();
  }
}, 90_000);

it.each(["SIGINT", "SIGHUP"] as const)(
  "%s stops it as SIGTERM does, and no log line is left in the buffer",
  async (signal) => {
    const server = await startServerProcess(env);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${server.url}/health/live`, { headers: { "x-request-id": `${signal}-${i}` } });
      expect(res.status).toBe(200);
      ids.push(res.headers.get("x-request-id")!);
      await res.body?.cancel();
    }
    // at once: the lines are still in the server's 4 KiB / 200 ms buffer
    expect(await server.stop(signal)).toBe(0);
    const logged = server
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { msg: string; request_id?: string });
    const ours = logged.filter((l) => l.msg === "request" && l.request_id?.startsWith(signal));
    expect(ours.map((l) => l.request_id)).toEqual(ids);
    expect(logged.at(-1)?.msg).toBe("stopped");
  },
);
