import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { tableFromIPC } from "apache-arrow";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsv } from "../src/offline/csv.ts";
import { exportHistorical } from "../src/offline/export.ts";
import { selectFeatures } from "../src/offline/features.ts";
import { formatTimestamp } from "../src/values.ts";
import { createTestContext, type TestContext } from "./support/app.ts";
import { runCli } from "./support/process.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";

let t: TestContext;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo" });
  dir = await mkdtemp(path.join(tmpdir(), "larder-offline-cli-"));
  env = { DATABASE_URL: t.db.url, REDIS_URL: TEST_REDIS_URL, LARDER_REDIS_PREFIX: t.prefix };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await t?.close();
});

const HOUR = 3600_000;
const now = Date.now();
// event times between the example's hourly rows, one outside the 1d ttl of everything, one unknown driver
const ENTITIES = {
  driver_id: [1001, 1002, 1001, 1049, 9999],
  event_timestamp: [now - 90 * 60_000, now - 5 * HOUR - 60_000, now - 10 * 24 * HOUR, now - 30 * 60_000, now].map(
    (ms) => new Date(ms).toISOString(),
  ),
};
const FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"];

async function expected() {
  const res = await t.call("POST", "/v1/projects/demo/historical-features", {
    entity_df: ENTITIES,
    features: FEATURES,
  });
  expect(res.status).toBe(200);
  return res.body.df as Record<string, unknown[]>;
}

async function readCsv(file: string) {
  const rows: string[][] = [];
  for await (const r of parseCsv(
    (async function* () {
      yield await readFile(file, "utf8");
    })(),
  ))
    rows.push(r);
  return rows;
}

describe("larder historical", () => {
  it("joins entity rows from a SQL query into a new table, inside Postgres", async () => {
    const values = ENTITIES.driver_id
      .map((d, i) => `(${d}, '${ENTITIES.event_timestamp[i]}'::timestamptz, ${i})`)
      .join(", ");
    const r = await runCli(
      [
        "historical",
        "--entities-sql",
        `select * from (values ${values}) v(driver_id, event_timestamp, label)`,
        "--features",
        FEATURES.join(","),
        "-p",
        "demo",
        "--into",
        "public.training_set",
      ],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/5 rows written to table public.training_set/);
    const c = new pg.Client({ connectionString: t.db.url });
    await c.connect();
    const rows = (await c.query("select * from public.training_set order by entity_row")).rows;
    await c.end();
    const want = await expected();
    expect(rows.map((x) => Number(x.label))).toEqual([0, 1, 2, 3, 4]);
    expect(rows.map((x) => x.conv_rate)).toEqual(want.conv_rate);
    expect(rows.map((x) => (x.avg_daily_trips === null ? null : Number(x.avg_daily_trips)))).toEqual(
      want.avg_daily_trips,
    );
    expect(want.conv_rate!.filter((v) => v !== null)).toHaveLength(3);

    // the table exists now: said so, with the way out; --replace replaces it
    const args = [
      "historical",
      "--entities-sql",
      "select 1001::bigint as driver_id, now() as event_timestamp",
      "--features",
      FEATURES[0]!,
      "-p",
      "demo",
      "--into",
      "public.training_set",
    ];
    const again = await runCli(args, env);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe("error: table public.training_set already exists: pass --replace to replace it");
    const replaced = await runCli([...args, "--replace"], env);
    expect(replaced.code, replaced.stderr).toBe(0);
    const c2 = new pg.Client({ connectionString: t.db.url });
    await c2.connect();
    const after = (await c2.query("select * from public.training_set")).rows;
    await c2.end();
    expect(after).toHaveLength(1);
    expect(Object.keys(after[0]!)).not.toContain("label");
  });

  it("joins entity rows from a CSV file into a CSV file, the same answer as the HTTP endpoint", async () => {
    const input = path.join(dir, "entities.csv");
    const lines = ENTITIES.driver_id.map(
      (d, i) => `${d},"${ENTITIES.event_timestamp[i]!.replace("T", " ")}",note ${i}`,
    );
    await writeFile(input, `driver_id,event_timestamp,note\n${lines.join("\n")}\n`);
    const out = path.join(dir, "out.csv");
    const r = await runCli(
      ["historical", "--entities-csv", input, "--features", FEATURES.join(","), "-p", "demo", "--out", out],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const rows = await readCsv(out);
    expect(rows[0]).toEqual(["driver_id", "event_timestamp", "note", "conv_rate", "avg_daily_trips"]);
    const want = await expected();
    expect(rows.slice(1).map((x) => x[0])).toEqual(ENTITIES.driver_id.map(String));
    expect(rows.slice(1).map((x) => x[2])).toEqual(ENTITIES.driver_id.map((_, i) => `note ${i}`));
    expect(rows.slice(1).map((x) => (x[3] === "" ? null : Number(x[3])))).toEqual(want.conv_rate);
    expect(rows.slice(1).map((x) => (x[4] === "" ? null : Number(x[4])))).toEqual(want.avg_daily_trips);
  });

  it("--out FILE.arrow and FILE.ndjson: the same rows, typed, with progress", async () => {
    const values = ENTITIES.driver_id
      .map((d, i) => `(${d}::bigint, '${ENTITIES.event_timestamp[i]}'::timestamptz, ${i})`)
      .join(", ");
    const entitiesSql = `select * from (values ${values}) v(driver_id, event_timestamp, label)`;
    const arrowFile = path.join(dir, "out.arrow");
    const r = await runCli(
      ["historical", "--entities-sql", entitiesSql, "--features", FEATURES.join(","), "-p", "demo", "--out", arrowFile],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/writing: 100\.0% 5\/5 rows|5 rows written to/);
    const want = await expected();
    const table = tableFromIPC(await readFile(arrowFile));
    expect(table.schema.fields.map((f) => `${f.name}:${f.type}`)).toEqual([
      "driver_id:Int64",
      "event_timestamp:Timestamp<MICROSECOND, UTC>",
      "label:Int32",
      "conv_rate:Float32",
      "avg_daily_trips:Int64",
    ]);
    const col = (name: string) => [...Array(5).keys()].map((i) => table.getChild(name)!.get(i));
    expect(col("driver_id")).toEqual(ENTITIES.driver_id.map(BigInt));
    // Float32 holds the float32 the JSON answer prints shortest
    expect(col("conv_rate")).toEqual(want.conv_rate!.map((v) => (v === null ? null : Math.fround(v as number))));
    expect(col("avg_daily_trips")).toEqual(want.avg_daily_trips!.map((v) => (v === null ? null : BigInt(v as number))));

    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on("data", (c) => chunks.push(c));
    const selection = selectFeatures(await t.deps.snapshots.getExisting("demo"), { features: FEATURES });
    await exportHistorical(t.deps.db, { selection, entities: { sql: entitiesSql }, out: sink, format: "ndjson" });
    const rows = Buffer.concat(chunks)
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    // as every answer prints them: a fraction only when not zero, without trailing zeros (…20.73Z, not toISOString's …20.730Z)
    expect(rows.map((x) => x.event_timestamp)).toEqual(ENTITIES.event_timestamp.map(formatTimestamp));
    expect(rows.map((x) => x.conv_rate)).toEqual(want.conv_rate);
    expect(rows.map((x) => x.avg_daily_trips)).toEqual(want.avg_daily_trips);
  }, 120_000);

  it("refuses a query that is not one SELECT, and entity rows lacking a column", async () => {
    const injected = await runCli(
      [
        "historical",
        "--entities-sql",
        "select 1; drop table public.driver_stats",
        "--features",
        FEATURES[0]!,
        "-p",
        "demo",
        "--out",
        "-",
      ],
      env,
    );
    expect(injected.code).toBe(1);
    expect(injected.stderr).toMatch(/single SELECT/);
    // the same checks, in-process (a CLI start costs seconds)
    const snap = await t.deps.snapshots.get("demo");
    const selection = selectFeatures(snap, { features: FEATURES });
    const sink = new PassThrough();
    await expect(
      exportHistorical(t.deps.db, { selection, entities: { sql: "select 1001 as driver_id" }, out: sink }),
    ).rejects.toThrow(/lacks the column event_timestamp/);
    await expect(
      exportHistorical(t.deps.db, {
        selection,
        entities: {
          csv: (async function* () {
            yield "driver_id,event_timestamp\n1001,2024-01-01,extra\n";
          })(),
        },
        out: sink,
      }),
    ).rejects.toThrow(/line 2: 3 fields, the header has 2/);
    await expect(
      exportHistorical(t.deps.db, {
        selection,
        entities: { sql: "select 1 as driver_id, now() as event_timestamp" },
        into: "bad name",
      }),
    ).rejects.toThrow(/must be table or schema.table/);
  });
});

describe("larder materialize", () => {
  it("materialises a window with progress on stderr, and the online store answers it", async () => {
    const start = new Date(now - 3 * HOUR).toISOString();
    const end = new Date(now + HOUR).toISOString();
    const r = await runCli(["materialize", start, end, "--views", "driver_hourly_stats", "-p", "demo"], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ driver_hourly_stats .*: 50 entities read, 50 written/);
    expect(r.stderr).toMatch(/rows\/s/);
    const snap = await t.deps.snapshots.get("demo");
    const body = JSON.parse(
      await t.online.getOnlineFeatures(
        snap,
        { features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001, 1050, 7] } },
        { maxEntityRows: 10 },
      ),
    );
    expect(body.results[1].statuses).toEqual(["PRESENT", "PRESENT", "NOT_FOUND"]);
    const jobs = await t.call("GET", "/v1/projects/demo/materialization-jobs?feature_view=driver_hourly_stats");
    expect(jobs.body.jobs[0]).toMatchObject({ status: "succeeded", rows_read: 50 });
  });

  it("materialize-incremental continues from the last run; bad input is one clear line", async () => {
    const r = await runCli(
      [
        "materialize-incremental",
        new Date(now + 2 * HOUR).toISOString(),
        "--views",
        "driver_hourly_stats",
        "-p",
        "demo",
      ],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ driver_hourly_stats .*: 0 entities read, 0 written \(0 late\)/);
    const unknown = await runCli(["materialize-incremental", "2024-01-01", "--views", "nope", "-p", "demo"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown feature view nope/);
  });
});
