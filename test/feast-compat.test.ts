/**
 * Requests as Feast's clients really send them, to a real server process: Feast's docs use `curl -d '{…}'` (which
 * labels the body application/x-www-form-urlencoded), and Python code posts `data=json.dumps(…)` with no content-type.
 * Feast's feature server reads every body as JSON; so must Larder.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OnlineFeaturesResponse } from "../src/http/online-schemas.ts";
import { createTestDatabase, EXAMPLE_DEFINITIONS, loadExampleData, type TestDatabase } from "./support/db.ts";
import { runCli, type ServerProcess, startServerProcess } from "./support/process.ts";
import { clearPrefix, newRedis, TEST_REDIS_URL, testPrefix } from "./support/redis.ts";

let db: TestDatabase;
let server: ServerProcess;
const prefix = testPrefix();

beforeAll(async () => {
  db = await createTestDatabase();
  await loadExampleData(db.url);
  const env = { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, LARDER_REDIS_PREFIX: prefix };
  const applied = await runCli(["apply", "-f", EXAMPLE_DEFINITIONS], env);
  expect(applied.code, applied.stderr).toBe(0);
  server = await startServerProcess({ ...env, LARDER_AUTH: "disabled" });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  const r = newRedis();
  await clearPrefix(r, prefix);
  r.disconnect();
  await db?.drop();
});

/** A POST with the body as raw text and exactly the given headers (none added). */
async function post(path: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${server.url}${path}`, { method: "POST", body, headers });
  return { status: res.status, body: (await res.json()) as any };
}

const LABELS: [string, Record<string, string>][] = [
  ["curl -d (form-urlencoded)", { "content-type": "application/x-www-form-urlencoded" }],
  ["text/plain", { "content-type": "text/plain;charset=UTF-8" }],
  ["application/json", { "content-type": "application/json" }],
];

describe("bodies are JSON whatever their content-type says", () => {
  it.each(LABELS)("materialize, push and get-online-features sent as %s", async (_label, headers) => {
    const mat = await post(
      "/materialize",
      JSON.stringify({ start_ts: "2000-01-01T00:00:00Z", end_ts: new Date(Date.now() + 60_000).toISOString() }),
      headers,
    );
    expect(mat.status, JSON.stringify(mat.body)).toBe(200);
    expect(mat.body.jobs.every((j: { status: string }) => j.status === "succeeded")).toBe(true);

    const rate = Math.round(Math.random() * 1000) / 1000;
    const push = await post(
      "/push",
      JSON.stringify({
        push_source_name: "driver_stats_push",
        df: {
          driver_id: [1001],
          event_timestamp: [new Date(Date.now() + 1000).toISOString()],
          conv_rate: [rate],
          acc_rate: [0.5],
        },
      }),
      headers,
    );
    expect(push.status, JSON.stringify(push.body)).toBe(200);

    const res = await post(
      "/get-online-features",
      JSON.stringify({
        features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats_fresh:conv_rate"],
        entities: { driver_id: [1001, 1002] },
        full_feature_names: true,
      }),
      headers,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const body = OnlineFeaturesResponse.parse(res.body);
    expect(body.metadata.feature_names).toEqual([
      "driver_id",
      "driver_hourly_stats__conv_rate",
      "driver_hourly_stats_fresh__conv_rate",
    ]);
    expect(body.results[1]!.statuses).toEqual(["PRESENT", "PRESENT"]);
    expect(body.results[2]!.values[0]).toBe(rate);
  });

  it("with no content-type at all, and a malformed body is still a 400 in the error shape", async () => {
    // undici labels a string body text/plain; a Blob without a type sends no content-type header
    const lookup = JSON.stringify({ features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001] } });
    const res = await fetch(`${server.url}/get-online-features`, { method: "POST", body: new Blob([lookup]) });
    expect(res.status).toBe(200);
    const bad = await post("/get-online-features", "features=driver_hourly_stats:conv_rate", {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_argument");
    expect(bad.body.error.message).toMatch(/JSON/);
  });
});

describe("request ids", () => {
  const lookup = JSON.stringify({ features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001] } });
  const logLines = () =>
    server
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it("every answer carries one, the client's when it is a sane token, and the request's log line names it", async () => {
    const mine = `trace-${Date.now()}`;
    const cases: [string, Record<string, string>, number][] = [
      ["/get-online-features", { "x-request-id": mine }, 200],
      ["/get-online-features", { "x-request-id": "has spaces, commas" }, 200],
      ["/get-online-features", {}, 200],
      ["/no-such-route", {}, 404],
      ["/get-online-features?", { "x-request-id": `${mine}-bad` }, 200],
    ];
    const ids: string[] = [];
    for (const [path, headers, status] of cases) {
      const body = path === "/no-such-route" ? "{}" : lookup;
      const res = await fetch(`${server.url}${path}`, { method: "POST", body, headers });
      expect(res.status).toBe(status);
      await res.body?.cancel();
      const id = res.headers.get("x-request-id");
      expect(id, path).toMatch(/^[\w\-=]+$/);
      ids.push(id!);
    }
    expect(ids[0]).toBe(mine);
    expect(ids[1]).not.toContain(" ");
    expect(ids[4]).toBe(`${mine}-bad`);
    expect(new Set(ids).size).toBe(ids.length);
    // an error answered before routing (a malformed body) carries one too
    const bad = await fetch(`${server.url}/get-online-features`, { method: "POST", body: "[".repeat(200) });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-request-id")).toMatch(/^[\w\-=]+$/);
    ids.push(bad.headers.get("x-request-id")!);
    await bad.body?.cancel();

    // lines are written in batches: at the latest a fifth of a second later
    let lines: Record<string, unknown>[] = [];
    for (let i = 0; i < 50; i++) {
      lines = logLines().filter((l) => l.msg === "request" && ids.includes(l.request_id as string));
      if (lines.length === ids.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(lines.map((l) => l.request_id).sort()).toEqual([...ids].sort());
    const notFound = lines.find((l) => l.request_id === ids[3])!;
    expect(notFound).toMatchObject({ method: "POST", route: "unmatched", status: 404 });
    expect(lines.find((l) => l.request_id === ids[5])).toMatchObject({ status: 400 });
  });
});
