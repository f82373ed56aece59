import { spawn } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { LarderClient } from "../clients/typescript/src/index.ts";
import { buildCli } from "../src/cli/main.ts";
import { applyOnlineFixtures, iso } from "./online-fixtures.ts";
import { createTestContext, type TestContext } from "./support/app.ts";
import { type Listening, listen } from "./support/listen.ts";
import { ROOT } from "./support/process.ts";
import { runPython } from "./support/python.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";

const CLIENT_TS = path.join(ROOT, "clients/typescript/src/index.ts");
const TSC = path.join(ROOT, "node_modules/.bin/tsc");
const BIG = "9007199254740993";

let t: TestContext;
let server: Listening;
let dir: string;
const now = Math.floor(Date.now() / 1000) * 1000;

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo" });
  process.env.DATABASE_URL = t.db.url;
  process.env.REDIS_URL = TEST_REDIS_URL;
  process.env.LARDER_REDIS_PREFIX = t.prefix;
  process.env.LARDER_MIGRATE = "false";
  await applyOnlineFixtures(t);
  server = await listen(t.app);
  dir = await mkdtemp(path.join(tmpdir(), "larder-codegen-"));
  const c = new LarderClient({ url: server.url, project: "demo" });
  await c.push({
    pushSourceName: "driver_stats_push",
    df: { driver_id: [1001], event_timestamp: [iso(now - 1000)], conv_rate: [0.5], acc_rate: [null] },
  });
  const nulls = ["i32", "f32", "f64", "b", "flag", "ts", "doc", "fl", "sl"];
  await c.push({
    pushSourceName: "typed_push",
    df: {
      ...Object.fromEntries(nulls.map((n) => [n, [null]])),
      driver_id: [BIG],
      event_timestamp: [iso(now - 1000)],
      i64: [BIG],
      s: ["hello"],
      il: [[BIG, 7]],
    },
  });
});
afterAll(async () => {
  await server?.close();
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `larder codegen …`, run in this process (a spawned CLI costs seconds of CPU; cli.test.ts runs it for real). */
async function codegen(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  process.exitCode = undefined;
  try {
    await buildCli()
      .exitOverride()
      .configureOutput({ writeErr: () => {} })
      .parseAsync(["codegen", ...args], { from: "user" });
    return { code: Number(process.exitCode ?? 0), stdout: out.join("\n"), stderr: "" };
  } catch (e) {
    return { code: 1, stdout: out.join("\n"), stderr: (e as Error).message };
  } finally {
    log.mockRestore();
    process.exitCode = undefined;
  }
}

function tsc(project: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSC, ["-p", project], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

const TSCONFIG = JSON.stringify({
  compilerOptions: {
    strict: true,
    noEmit: true,
    target: "ES2022",
    module: "ESNext",
    moduleResolution: "Bundler",
    allowImportingTsExtensions: true,
    lib: ["ES2022", "DOM"],
    types: [],
    skipLibCheck: true,
  },
  files: ["use.ts"],
});

// A model's serving code: it reads acc_rate, which the second registry version drops.
const PROGRAM = `import { LarderClient } from ${JSON.stringify(CLIENT_TS)};
import { LarderFeatures, PROJECT, REGISTRY_VERSION } from "./larder-features.ts";

export async function predict(url: string) {
  const features = new LarderFeatures(new LarderClient({ url, project: PROJECT }));
  const answer = await features.views.driverHourlyStats([{ driver_id: 1001 }, { driver_id: 9007199254740993n }]);
  const row = answer.rows()[0]!;
  const conv: number | null = row.conv_rate;
  const acc: number | null = row.acc_rate;
  const trips: bigint | number | null = row.avg_daily_trips;
  const status: "PRESENT" | "NOT_FOUND" | "NULL_VALUE" | "OUTSIDE_MAX_AGE" = answer.rowsWithStatus()[0]!.acc_rate.status;
  const typed = (await features.services.typedService([{ driver_id: 1, customer_id: "c" }])).rows()[0]!;
  const i64: bigint | number | null = typed.i64;
  const rating: number | null = typed.rating;
  // @ts-expect-error a driver id is a number or a bigint, not a string
  await features.views.driverHourlyStats([{ driver_id: "1001" }]);
  // @ts-expect-error s is a string feature
  const wrong: number | null = typed.s;
  return { conv, acc, trips, status, i64, rating, wrong, version: REGISTRY_VERSION };
}
`;

describe("larder codegen", () => {
  it("python: the generated module compiles and its accessors return the right values", async () => {
    const out = path.join(dir, "py");
    const gen = await codegen(["--lang", "python", "-p", "demo", "--out", out]);
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stdout).toMatch(/larder_features\.py/);
    const file = path.join(out, "larder_features.py");
    const text = await readFile(file, "utf8");
    expect(text).toMatch(/registry version \d+/);
    expect(text).toMatch(
      /conv_rate: Optional\[float\] {2}# conversion rate \(driver_hourly_stats:conv_rate, float32\)/,
    );
    expect(text).toMatch(/il: Optional\[List\[int\]\]/);
    const script = `
import json, py_compile, sys
py_compile.compile(${JSON.stringify(file)}, doraise=True)
sys.path[:0] = [${JSON.stringify(path.join(ROOT, "clients/python"))}, ${JSON.stringify(out)}]
from larder_client import LarderClient
from larder_features import LarderFeatures, PROJECT, REGISTRY_VERSION
f = LarderFeatures(LarderClient(sys.argv[1]))  # no project: the accessors use PROJECT
fresh = f.views.driver_hourly_stats_fresh([{"driver_id": 1001}, {"driver_id": 4242}])
typed = f.views.typed([{"driver_id": ${BIG}}])[0]
service = f.services.typed_service_response([{"driver_id": ${BIG}, "customer_id": "c1"}]).to_rows_with_status()[0]
print(json.dumps({
  "fresh": fresh,
  "i64": [type(typed["i64"]).__name__, str(typed["i64"])],
  "il": [type(typed["il"][0]).__name__, str(typed["il"][0]), typed["il"][1]],
  "key": [type(typed["driver_id"]).__name__, str(typed["driver_id"])],
  "s": typed["s"],
  "service": {k: v["status"] for k, v in service.items()},
  "version": REGISTRY_VERSION,
}))
`;
    const run = await runPython(["-c", script, server.url], {});
    expect(run.code, run.output).toBe(0);
    const got = JSON.parse(run.output);
    expect(got.fresh).toEqual([
      { driver_id: 1001, conv_rate: 0.5, acc_rate: null },
      { driver_id: 4242, conv_rate: null, acc_rate: null },
    ]);
    expect(got.i64).toEqual(["int", BIG]);
    expect(got.il).toEqual(["int", BIG, 7]);
    expect(got.key).toEqual(["int", BIG]);
    expect(got.s).toBe("hello");
    expect(got.service).toMatchObject({ s: "PRESENT", i64: "PRESENT", trips: "NOT_FOUND" });
    expect(got.version).toBeGreaterThan(0);
  });

  it("typescript: typechecks under --strict, runs against the server; a dropped feature breaks the build and --check", async () => {
    const v1 = path.join(dir, "ts1");
    const gen = await codegen(["--lang", "typescript", "-p", "demo", "--out", v1, "--client-import", CLIENT_TS]);
    expect(gen.code, gen.stderr).toBe(0);
    const text = await readFile(path.join(v1, "larder-features.ts"), "utf8");
    expect(text).toMatch(/generated by `larder codegen` from registry version\s+\*?\s*\d+/);
    expect(text).toContain("/** conversion rate (driver_hourly_stats:conv_rate, float32) */");
    expect(text).toContain("/** A driver of the fleet (entity driver, int64) */");
    await writeFile(path.join(v1, "use.ts"), PROGRAM);
    await writeFile(path.join(v1, "tsconfig.json"), TSCONFIG);
    const ok = await tsc(path.join(v1, "tsconfig.json"));
    expect(ok.code, ok.output).toBe(0);

    // the accessors, run: int64 beyond 2^53 as bigint, within as number
    const mod = await import(path.join(v1, "larder-features.ts"));
    const features = new mod.LarderFeatures(new LarderClient({ url: server.url, project: "elsewhere" }));
    const typed = await features.views.typed([{ driver_id: BigInt(BIG) }, { driver_id: 5 }]);
    expect(typed.rows()[0]).toMatchObject({
      driver_id: BigInt(BIG),
      i64: BigInt(BIG),
      il: [BigInt(BIG), 7],
      s: "hello",
    });
    expect(typed.rowsWithStatus()[1].s.status).toBe("NOT_FOUND");
    const fresh = await features.views.driverHourlyStatsFresh([{ driver_id: 1001 }]);
    expect(fresh.rows()).toEqual([{ driver_id: 1001, conv_rate: 0.5, acc_rate: null }]);

    // --service: that service only
    const only = path.join(dir, "only");
    expect(
      (await codegen(["--lang", "typescript", "-p", "demo", "--service", "driver_activity", "--out", only])).code,
    ).toBe(0);
    const onlyText = await readFile(path.join(only, "larder-features.ts"), "utf8");
    expect(onlyText).toContain("driverActivity:");
    expect(onlyText).not.toContain("driverHourlyStats:");
    const unknown = await codegen(["--lang", "python", "-p", "demo", "--service", "nope", "--out", only]);
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/no feature service nope/)]);

    expect((await codegen(["--check", v1])).code).toBe(0);

    // the registry changes: acc_rate is dropped, avg_daily_trips becomes a float
    const defs = structuredClone(t.deps.snapshots.peek("demo")!.definitions);
    const view = defs.feature_views.find((v) => v.name === "driver_hourly_stats")!;
    view.schema = [view.schema[0]!, { ...view.schema[2]!, dtype: "float64" }];
    await t.deps.registry.apply("demo", defs);

    const checked = await codegen(["--check", v1]);
    expect(checked.code, checked.stdout + checked.stderr).toBe(1);
    expect(checked.stdout).toMatch(/feature driver_hourly_stats:acc_rate no longer exists/);
    expect(checked.stdout).toMatch(/driver_hourly_stats:avg_daily_trips is now float64 \(was int64\)/);

    const v2 = path.join(dir, "ts2");
    expect(
      (await codegen(["--lang", "typescript", "-p", "demo", "--out", v2, "--client-import", CLIENT_TS])).code,
    ).toBe(0);
    await copyFile(path.join(v1, "use.ts"), path.join(v2, "use.ts"));
    await writeFile(path.join(v2, "tsconfig.json"), TSCONFIG);
    const broken = await tsc(path.join(v2, "tsconfig.json"));
    expect(broken.code).not.toBe(0);
    expect(broken.output).toMatch(/acc_rate/);
    expect((await codegen(["--check", v2])).code).toBe(0);
  });

  it("says what it needs", async () => {
    const bad = await codegen(["--out", dir]);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/--lang and --out/)]);
    const missing = await codegen(["--check", path.join(dir, "nothing-here")]);
    expect(missing.code).toBe(1);
  });
});
