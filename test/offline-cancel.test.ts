import { spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./support/app.ts";
import { cleanEnv, LARDER_BIN, ROOT } from "./support/process.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";

/**
 * A historical request whose client goes away must not leave its query running in Postgres. The source is a query
 * that sleeps per row, so the join runs for many seconds unless cancelled.
 */
let t: TestContext;
let admin: pg.Client;

beforeAll(async () => {
  t = await createTestContext();
  admin = new pg.Client({ connectionString: t.db.url });
  await admin.connect();
  await admin.query(
    "CREATE TABLE public.slow_src (driver_id bigint, ts timestamptz, x real); " +
      "INSERT INTO public.slow_src SELECT g % 5, '2024-01-01Z', g FROM generate_series(1, 200) g",
  );
  const res = await t.call("POST", "/v1/projects/p/apply", {
    entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
    data_sources: [
      {
        name: "slow",
        kind: "postgres",
        query: "select driver_id, ts, x from public.slow_src where pg_sleep(0.1) is not null",
        timestamp_field: "ts",
      },
    ],
    feature_views: [{ name: "v", entities: ["driver"], source: "slow", schema: [{ name: "x", dtype: "float32" }] }],
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
});
afterAll(async () => {
  await admin?.end();
  await t?.close();
});

/** Queries of the app's connections still running in this test's database (not ours, not idle ones). */
async function activeSleeps(): Promise<string[]> {
  const { rows } = await admin.query(
    "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() " +
      "AND state = 'active' AND query LIKE '%pg_sleep%'",
  );
  return rows.map((r) => r.query as string);
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

const BODY = JSON.stringify({
  entity_df: { driver_id: [1, 2, 3], event_timestamp: ["2024-01-02Z", "2024-01-02Z", "2024-01-02Z"] },
  features: ["v:x"],
});

describe("cancelling historical retrieval", () => {
  it("a client that disconnects leaves no query running", async () => {
    const server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as AddressInfo;
    try {
      const abort = new AbortController();
      const req = fetch(`http://127.0.0.1:${port}/v1/projects/p/historical-features`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: BODY,
        signal: abort.signal,
      }).catch((e: Error) => e);
      expect(await waitFor(async () => (await activeSleeps()).length > 0, 10_000)).toBe(true);
      abort.abort();
      expect(await req).toBeInstanceOf(Error);
      // the query would run 20 s (200 rows × 0.1 s); cancelled, it is gone within moments
      expect(await waitFor(async () => (await activeSleeps()).length === 0, 3_000)).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("a request past its time limit is cancelled with a 504, its query too", async () => {
    const app = (await import("../src/http/app.ts")).createApp({
      ...t.deps,
      limits: { ...t.deps.limits, requestTimeoutMs: 500 },
    });
    const started = Date.now();
    const res = await app.request("/v1/projects/p/historical-features", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: BODY,
    });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await waitFor(async () => (await activeSleeps()).length === 0, 3_000)).toBe(true);
  });

  it("larder historical on Ctrl-C cancels its query, creates nothing and exits 130", async () => {
    const child = spawn(
      process.execPath,
      [
        LARDER_BIN,
        "historical",
        "-p",
        "p",
        "--features",
        "v:x",
        "--entities-sql",
        "select 1::bigint as driver_id, timestamptz '2024-01-02Z' as event_timestamp",
        "--into",
        "public.cancelled_out",
      ],
      {
        cwd: ROOT,
        env: cleanEnv({ DATABASE_URL: t.db.url, REDIS_URL: TEST_REDIS_URL, LARDER_REDIS_PREFIX: t.prefix }),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    try {
      expect(await waitFor(async () => (await activeSleeps()).length > 0, 90_000), stderr).toBe(true);
      child.kill("SIGINT");
      expect(await exited).toBe(130);
      expect(stderr).toMatch(
        /interrupted: the query was cancelled in Postgres; table public.cancelled_out was not created/,
      );
      expect(await activeSleeps()).toEqual([]);
      const { rows } = await admin.query("SELECT to_regclass('public.cancelled_out') AS t");
      expect(rows[0].t).toBeNull();
    } finally {
      child.kill("SIGKILL");
    }
  }, 120_000);
});
