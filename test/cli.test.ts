import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { createTestDatabase, EXAMPLE_DEFINITIONS, loadExampleData, type TestDatabase } from "./support/db.ts";
import { ROOT, runCli, startServerProcess } from "./support/process.ts";
import { TEST_REDIS_URL, testPrefix } from "./support/redis.ts";

let db: TestDatabase;
/** Both stores, as every command that touches one needs (half a configuration is refused: see below). */
let stores: Record<string, string>;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  await loadExampleData(db.url);
  stores = { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, LARDER_REDIS_PREFIX: testPrefix() };
});
afterAll(async () => db?.drop());

/** A temporary directory of this file's, removed when the file's tests end (whether they passed or not). */
const tempDirs: string[] = [];
afterAll(() => Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "larder-cli-"));
  tempDirs.push(dir);
  return dir;
}

describe("the larder CLI", () => {
  it("has --help on every command", async () => {
    const top = await runCli(["--help"]);
    expect(top.code).toBe(0);
    const commandSection = top.stdout.split("Commands:")[1] ?? "";
    const commands = [...commandSection.matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]!).filter((c) => c !== "help");
    expect(commands).toEqual(expect.arrayContaining(["serve", "migrate", "plan", "apply"]));
    const version = await runCli(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")).version);
    // two at a time: one CLI process per command, on two cores
    for (let i = 0; i < commands.length; i += 2) {
      const batch = commands.slice(i, i + 2);
      const results = await Promise.all(batch.map((c) => runCli([c, "--help"])));
      results.forEach((r, j) => {
        expect(r.code, batch[j]).toBe(0);
        expect(r.stdout).toContain(`Usage: larder ${batch[j]}`);
      });
    }
  }, 120_000);

  it("migrates, plans and applies against the database directly", async () => {
    const env = stores;
    const migrated = await runCli(["migrate"], env);
    expect(migrated.code, migrated.stderr).toBe(0);
    const plan = await runCli(["plan", "-f", EXAMPLE_DEFINITIONS, "-p", "cli"], env);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain("+ feature_view driver_hourly_stats (create)");
    expect(plan.stdout).toMatch(/10 to create, 0 to update, 0 to delete, 0 unchanged/);
    const apply = await runCli(["apply", "-f", EXAMPLE_DEFINITIONS, "-p", "cli"], env);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/Applied for project cli: 10 to create/);
    const again = await runCli(["plan", "-f", EXAMPLE_DEFINITIONS, "-p", "cli"], env);
    expect(again.stdout).toMatch(/0 to create, 0 to update, 0 to delete, 10 unchanged/);

    const dir = await tempDir();
    const changed = YAML.parse(await readFile(EXAMPLE_DEFINITIONS, "utf8"));
    changed.feature_views[0].ttl = "12h";
    const file = path.join(dir, "repo.json");
    await writeFile(file, JSON.stringify(changed));
    const diff = await runCli(["plan", "-f", file, "-p", "cli"], env);
    expect(diff.stdout).toContain("~ feature_view driver_hourly_stats (update)");
    expect(diff.stdout).toContain("ttl: 86400 → 43200");

    // a project name the HTTP API could never reach is refused here too, and nothing is written
    const bad = await runCli(["apply", "-f", EXAMPLE_DEFINITIONS, "-p", "Bad Name!"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/project.*not "Bad Name!"/);
  });

  it("applies a ttl past 32 bits of seconds, in Postgres and in the embedded store, and plans it back", async () => {
    const dir = await tempDir();
    // a query source: the embedded store has none of the example's tables
    const defs = {
      entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
      data_sources: [
        {
          name: "s",
          kind: "postgres",
          query: "select 1::bigint as driver_id, now() as ts, 1::real as x",
          timestamp_field: "ts",
        },
      ],
      feature_views: [
        { name: "v", entities: ["driver"], source: "s", ttl: "36500d", schema: [{ name: "x", dtype: "float32" }] },
      ],
    }; // ttl 100 years: 3 153 600 000 s, past 2^31 - 1
    const file = path.join(dir, "repo.json");
    await writeFile(file, JSON.stringify(defs));
    const longer = path.join(dir, "longer.json");
    await writeFile(longer, JSON.stringify(defs).replace('"36500d"', '"36501d"'));
    try {
      // embedded: no DATABASE_URL/REDIS_URL, a fresh data directory (a copy of the migrated template)
      for (const env of [stores, { LARDER_DATA_DIR: path.join(dir, ".larder") }]) {
        const apply = await runCli(["apply", "-f", file, "-p", "longttl"], env);
        expect(apply.code, apply.stderr).toBe(0);
        const plan = await runCli(["plan", "-f", longer, "-p", "longttl"], env);
        expect(plan.code, plan.stderr).toBe(0);
        expect(plan.stdout).toContain("ttl: 3153600000 → 3153686400");
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("reports errors in one clear line with a non-zero exit", async () => {
    const missing = await runCli(["plan", "-f", "no/such/file.yaml"], stores);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim()).toBe("error: cannot read no/such/file.yaml: ENOENT");

    const dir = await tempDir();
    const bad = path.join(dir, "bad.yaml");
    await writeFile(bad, "entities:\n  - name: driver\n    value_type: int128\n");
    const invalid = await runCli(["apply", "-f", bad, "-p", "cli"], stores);
    expect(invalid.code).not.toBe(0);
    expect(invalid.stderr).toContain("error: the definitions have 1 problem");
    expect(invalid.stderr).toContain("entities[0].value_type");

    const badUrl = await runCli(["plan", "-f", EXAMPLE_DEFINITIONS], { DATABASE_URL: "mysql://x" });
    expect(badUrl.code).not.toBe(0);
    expect(badUrl.stderr).toMatch(/DATABASE_URL: must be a postgres/);
  });

  it("refuses half a store configuration as serve does, instead of using the embedded store", async () => {
    // a key made in the embedded store would never work on the server that has DATABASE_URL and REDIS_URL
    const [onlyRedis, onlyDb] = await Promise.all([
      runCli(["keys", "create", "--scope", "read"], { REDIS_URL: TEST_REDIS_URL }),
      runCli(["plan", "-f", EXAMPLE_DEFINITIONS], { DATABASE_URL: db.url }),
    ]);
    expect(onlyRedis.code).toBe(1);
    expect(onlyRedis.stdout).toBe("");
    expect(onlyRedis.stderr.trim()).toBe(
      "error: invalid configuration: DATABASE_URL is missing (set both DATABASE_URL and REDIS_URL, or neither for embedded mode)",
    );
    expect(onlyDb.code).toBe(1);
    expect(onlyDb.stderr.trim()).toMatch(/^error: invalid configuration: REDIS_URL is missing/);
  });
});

describe("larder serve", () => {
  it("stops at start-up with a clear message when only one store is configured", async () => {
    const r = await runCli(["serve"], { DATABASE_URL: db.url });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/REDIS_URL is missing/);
    const p = await runCli(["serve"], { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, PORT: "not-a-port" });
    expect(p.code).not.toBe(0);
    expect(p.stderr).toMatch(/PORT/);
    const b = await runCli(["serve"], {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      LARDER_REDIS_PREFIX: "a{b}:",
    });
    expect(b.code).not.toBe(0);
    expect(b.stderr.trim().split("\n")).toHaveLength(1);
    expect(b.stderr).toMatch(/LARDER_REDIS_PREFIX: must not contain \{ or \}/);
  });

  it("starts, migrates, and serves /health, /docs and /openapi.json", async () => {
    const fresh = await createTestDatabase({ migrate: false });
    const server = await startServerProcess({
      DATABASE_URL: fresh.url,
      REDIS_URL: TEST_REDIS_URL,
      LARDER_REDIS_PREFIX: testPrefix(),
      LARDER_AUTH: "disabled",
    });
    try {
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: "ok" });
      const docs = await fetch(`${server.url}/docs`);
      expect(docs.status).toBe(200);
      expect(docs.headers.get("content-type")).toMatch(/text\/html/);
      const doc = await fetch(`${server.url}/openapi.json`);
      expect(((await doc.json()) as { paths: Record<string, unknown> }).paths["/health"]).toBeDefined();
      const first = server
        .output()
        .split("\n")
        .find((l) => l.trim());
      expect(JSON.parse(first!).msg).toMatch(/Postgres and Redis/);
    } finally {
      expect(await server.stop()).toBe(0);
      await fresh.drop();
    }
  });
});
