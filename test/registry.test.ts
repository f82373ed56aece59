import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyStore } from "../src/auth/keys.ts";
import { Plan } from "../src/http/schemas.ts";
import { MAX_TTL_SECONDS } from "../src/registry/definitions.ts";
import { createTestContext, exampleDefinitions, type TestContext } from "./support/app.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ exampleData: true });
});
afterAll(async () => t?.close());

describe("plan and apply of the example", () => {
  it("plans every object as a create, writing nothing", async () => {
    const defs = await exampleDefinitions();
    const res = await t.call("POST", "/v1/projects/demo/plan", defs);
    expect(res.status).toBe(200);
    const plan = Plan.parse(res.body);
    expect(plan.applied).toBe(false);
    expect(plan.summary).toEqual({ create: 10, update: 0, delete: 0, unchanged: 0 });
    const projects = await t.call("GET", "/v1/projects");
    expect(projects.body.projects).toEqual([]);
  });

  it("applies the example, creating every object", async () => {
    const defs = await exampleDefinitions();
    const res = await t.call("POST", "/v1/projects/demo/apply", defs);
    expect(res.status).toBe(200);
    expect(res.body.summary.create).toBe(10);
    const views = await t.call("GET", "/v1/projects/demo/feature-views");
    expect(views.body.feature_views.map((v: { name: string }) => v.name)).toEqual([
      "customer_profile",
      "driver_hourly_stats",
      "driver_hourly_stats_fresh",
    ]);
    const fv = await t.call("GET", "/v1/projects/demo/feature-views/driver_hourly_stats");
    expect(fv.status).toBe(200);
    // one timestamp format in every answer (RFC 3339, UTC, Z, a fraction only when not zero)
    for (const ts of [fv.body.created_at, fv.body.updated_at])
      expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/);
    expect(fv.body.spec.ttl).toBe(86400);
    expect(fv.body.version).toBe(1);
    for (const p of ["entities", "data-sources", "feature-services"]) {
      const r = await t.call("GET", `/v1/projects/demo/${p}`);
      expect(r.status).toBe(200);
    }
  });

  it("re-applying the same file changes nothing", async () => {
    const defs = await exampleDefinitions();
    const plan = await t.call("POST", "/v1/projects/demo/plan", defs);
    expect(plan.body.summary).toEqual({ create: 0, update: 0, delete: 0, unchanged: 10 });
    const before = (await t.call("GET", "/v1/projects")).body.projects[0].registry_version;
    const res = await t.call("POST", "/v1/projects/demo/apply", defs);
    expect(res.body.summary.unchanged).toBe(10);
    expect(res.body.registry_version).toBe(before);
  });

  it("a changed feature makes a new version, field by field, and the old one stays readable", async () => {
    const defs = await exampleDefinitions();
    defs.feature_views[0].ttl = "2d";
    // int32 cannot hold the source's bigint column: refused, with the path
    defs.feature_views[0].schema[2].dtype = "int32";
    const refused = await t.call("POST", "/v1/projects/demo/plan", defs);
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toEqual([
      expect.objectContaining({ path: "feature_views[0].schema[2]", message: expect.stringMatching(/int8/) }),
    ]);
    defs.feature_views[0].schema[2].dtype = "float64";
    const plan = await t.call("POST", "/v1/projects/demo/plan", defs);
    const change = plan.body.changes.find((c: { name: string }) => c.name === "driver_hourly_stats");
    expect(change.action).toBe("update");
    expect(change.fields).toEqual(
      expect.arrayContaining([
        { field: "ttl", from: 86400, to: 172800 },
        { field: "schema.avg_daily_trips.dtype", from: "int64", to: "float64" },
      ]),
    );
    expect(change.breaking.length).toBeGreaterThan(0);
    expect(plan.body.breaking).toBe(true);
    const applied = await t.call("POST", "/v1/projects/demo/apply", defs);
    expect(applied.status).toBe(200);
    expect(applied.body.summary.update).toBe(1);
    const versions = await t.call("GET", "/v1/projects/demo/feature-views/driver_hourly_stats/versions");
    expect(versions.body.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(versions.body.versions[0].spec.ttl).toBe(86400);
    expect(versions.body.versions[1].spec.ttl).toBe(172800);
  });

  it("removing an object from the file deletes it, and keeps its history", async () => {
    const defs = await exampleDefinitions();
    defs.feature_services = defs.feature_services.filter((s: { name: string }) => s.name !== "driver_and_customer");
    const res = await t.call("POST", "/v1/projects/demo/apply", defs);
    expect(res.body.summary.delete).toBe(1);
    expect((await t.call("GET", "/v1/projects/demo/feature-services/driver_and_customer")).status).toBe(404);
    const versions = await t.call("GET", "/v1/projects/demo/feature-services/driver_and_customer/versions");
    expect(versions.body.versions.map((v: { change: string }) => v.change)).toEqual(["create", "delete"]);
  });
});

describe("http basics", () => {
  it("answers unknown routes and objects with 404 JSON", async () => {
    const r1 = await t.call("GET", "/nope");
    expect(r1.status).toBe(404);
    expect(r1.body.error.code).toBe("not_found");
    const r2 = await t.call("GET", "/v1/projects/demo/feature-views/nope");
    expect(r2.status).toBe(404);
    expect(r2.body.error.message).toMatch(/nope/);
    const r3 = await t.call("GET", "/v1/projects/unknown_project/entities");
    expect(r3.status).toBe(404);
  });

  it("serves an OpenAPI document listing the routes, and a docs page", async () => {
    const doc = await t.call("GET", "/openapi.json");
    expect(doc.status).toBe(200);
    const paths = Object.keys(doc.body.paths);
    for (const p of [
      "/health",
      "/v1/projects",
      "/v1/projects/{project}/plan",
      "/v1/projects/{project}/apply",
      "/v1/projects/{project}/feature-views/{name}/versions",
    ])
      expect(paths).toContain(p);
    const docs = await t.app.request("/docs");
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("/openapi.json");
  });

  it("rejects malformed JSON with a 400 JSON error", async () => {
    const res = await t.call("POST", "/v1/projects/demo/plan", "{not json");
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_argument");
  });
});

describe("project names", () => {
  it("one rule for every entry point: a name the registry accepts is one the HTTP routes reach", async () => {
    const defs = await exampleDefinitions();
    const message = 'project must be an identifier ([A-Za-z_][A-Za-z0-9_]*), not "Bad Name!"';
    // the registry itself (what the CLI's plan and apply call), and a key's --project
    for (const attempt of [t.deps.registry.apply("Bad Name!", defs), t.deps.registry.plan("Bad Name!", defs)])
      await expect(attempt).rejects.toMatchObject({ code: "invalid_argument", message });
    const keys = new ApiKeyStore({ db: t.db.database.db, pepper: "test-pepper-0123456789" });
    await expect(keys.create({ scope: "read", project: "Bad Name!" })).rejects.toMatchObject({ message });
    expect((await t.call("GET", "/v1/projects")).body.projects).not.toContain("Bad Name!");
    // the HTTP routes, with the same words
    const res = await t.call("POST", `/v1/projects/${encodeURIComponent("Bad Name!")}/apply`, defs);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain("project must be an identifier ([A-Za-z_][A-Za-z0-9_]*)");
  });
});

describe("a ttl past what 32 bits of seconds hold (about 68 years)", () => {
  const DAY = 86_400;
  it("is applied, read back, planned unchanged, and bounds a lookup's age", async () => {
    const defs = await exampleDefinitions();
    // 100 years, and the longest ttl the definitions accept (MAX_TTL_SECONDS, about 285 years)
    const views = defs.feature_views as { name: string; ttl: unknown }[];
    const stats = views.find((v) => v.name === "driver_hourly_stats")!;
    const fresh = views.find((v) => v.name === "driver_hourly_stats_fresh")!;
    stats.ttl = "36500d";
    fresh.ttl = MAX_TTL_SECONDS;
    const applied = await t.call("POST", "/v1/projects/longttl/apply", defs);
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const one = await t.call("GET", "/v1/projects/longttl/feature-views/driver_hourly_stats");
    expect(one.body.spec.ttl).toBe(36_500 * DAY);
    const list = await t.call("GET", "/v1/projects/longttl/feature-views");
    const ttls = Object.fromEntries(
      list.body.feature_views.map((v: { name: string; spec: { ttl: number } }) => [v.name, v.spec.ttl]),
    );
    expect(ttls).toMatchObject({ driver_hourly_stats: 36_500 * DAY, driver_hourly_stats_fresh: MAX_TTL_SECONDS });
    const again = await t.call("POST", "/v1/projects/longttl/plan", defs);
    expect(again.body.summary).toEqual({ create: 0, update: 0, delete: 0, unchanged: 10 });

    // the ttl bounds the age a lookup serves: 99 years old is present, 101 years old is not
    const yearsAgo = (y: number) => new Date(Date.now() - y * 365 * DAY * 1000).toISOString();
    const write = await t.call("POST", "/v1/projects/longttl/write-to-online-store", {
      feature_view_name: "driver_hourly_stats",
      df: {
        driver_id: [1, 2],
        event_timestamp: [yearsAgo(99), yearsAgo(101)],
        conv_rate: [0.5, 0.25],
        acc_rate: [0.5, 0.5],
        avg_daily_trips: [10, 20],
      },
    });
    expect(write.status, JSON.stringify(write.body)).toBe(200);
    const got = await t.call("POST", "/v1/projects/longttl/online-features", {
      features: ["driver_hourly_stats:conv_rate"],
      entities: { driver_id: [1, 2] },
    });
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.results[1]).toMatchObject({ values: [0.5, null], statuses: ["PRESENT", "OUTSIDE_MAX_AGE"] });
  });
});
