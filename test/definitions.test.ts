import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDefinitionsFile } from "../src/cli/definitions-file.ts";
import { ErrorBody } from "../src/http/errors.ts";
import { createTestContext, exampleDefinitions, type TestContext } from "./support/app.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "defs" });
});
afterAll(async () => t?.close());

type Defs = any;
interface Case {
  name: string;
  mutate: (d: Defs) => void;
  /** Each expected problem: its path, and a pattern its message must match. */
  problems: [string, RegExp][];
}

const cases: Case[] = [
  {
    name: "unknown dtype",
    mutate: (d) => (d.feature_views[0].schema[0].dtype = "float128"),
    problems: [["feature_views[0].schema[0].dtype", /^unknown dtype "float128"; expected one of int32, /]],
  },
  {
    name: "a name that is not an identifier",
    mutate: (d) => (d.entities[1].name = "customer-id"),
    // the view that named the entity now names one that does not exist: both are listed
    problems: [
      ["entities[1].name", /identifier/],
      ["feature_views[2].entities[0]", /unknown entity customer/],
    ],
  },
  {
    name: "duplicate entity",
    mutate: (d) => d.entities.push({ ...d.entities[0] }),
    problems: [["entities[2].name", /duplicate name driver/]],
  },
  {
    name: "feature view with an unknown entity",
    mutate: (d) => (d.feature_views[0].entities = ["rider"]),
    problems: [["feature_views[0].entities[0]", /unknown entity rider/]],
  },
  {
    name: "feature view with an unknown source",
    mutate: (d) => (d.feature_views[2].source = "nowhere"),
    problems: [["feature_views[2].source", /unknown data source nowhere/]],
  },
  {
    name: "feature service naming an unknown view",
    mutate: (d) => (d.feature_services[0].features[0].feature_view = "ghost_view"),
    problems: [["feature_services[0].features[0].feature_view", /unknown feature view ghost_view/]],
  },
  {
    name: "feature service naming an unknown feature",
    mutate: (d) => d.feature_services[0].features[0].features.push("speed"),
    problems: [["feature_services[0].features[0].features[2]", /no feature speed/]],
  },
  {
    name: "a source table that does not exist",
    mutate: (d) => (d.data_sources[2].table = "public.no_such_table"),
    problems: [["data_sources[2].table", /no_such_table/]],
  },
  {
    name: "a feature whose column the source lacks",
    mutate: (d) => d.feature_views[0].schema.push({ name: "rating", dtype: "float32" }),
    problems: [["feature_views[0].schema[3]", /no column rating/]],
  },
  {
    name: "a feature whose dtype does not fit its column",
    mutate: (d) => (d.feature_views[2].schema[0].dtype = "bool"),
    problems: [["feature_views[2].schema[0]", /float4.*bool/]],
  },
  {
    name: "a timestamp field the source lacks",
    mutate: (d) => (d.data_sources[0].timestamp_field = "ts"),
    problems: [["data_sources[0].timestamp_field", /column ts not found/]],
  },
  {
    name: "a ttl that is not a duration",
    mutate: (d) => (d.feature_views[0].ttl = "1 fortnight"),
    problems: [["feature_views[0].ttl", /ttl must be/]],
  },
  {
    name: "a push source whose batch source is unknown",
    mutate: (d) => (d.data_sources[1].batch_source = "missing_source"),
    problems: [["data_sources[1].batch_source", /unknown data source missing_source/]],
  },
  {
    name: "an unknown field",
    mutate: (d) => (d.feature_views[1].time_to_live = 60),
    problems: [["feature_views[1]", /unknown field: time_to_live/]],
  },
  {
    name: "a postgres source with both table and query",
    mutate: (d) => (d.data_sources[0].query = "select * from public.driver_stats"),
    problems: [["data_sources[0].table", /exactly one of table or query/]],
  },
  {
    name: "a query source with a second statement",
    mutate: (d) => {
      delete d.data_sources[2].table;
      d.data_sources[2].query = "select * from public.customer_profile; drop table public.driver_stats";
    },
    problems: [["data_sources[2].query", /single SELECT/]],
  },
  {
    name: "a duplicate feature in a view",
    mutate: (d) => d.feature_views[0].schema.push({ name: "conv_rate", dtype: "float32" }),
    problems: [["feature_views[0].schema[3].name", /duplicate feature conv_rate/]],
  },
  {
    name: "a feature named like a join key",
    mutate: (d) => d.feature_views[0].schema.push({ name: "driver_id", dtype: "int64" }),
    problems: [["feature_views[0].schema[3].name", /name of a join key/]],
  },
  {
    name: "a source of unknown kind",
    mutate: (d) => (d.data_sources[2].kind = "bigquery"),
    problems: [["data_sources[2].kind", /postgres or push/]],
  },
  {
    name: "a view with no features",
    mutate: (d) => (d.feature_views[1].schema = []),
    problems: [["feature_views[1].schema", /at least one feature/]],
  },
  {
    name: "a join key whose column type does not fit the entity's value type",
    mutate: (d) => (d.entities[1].value_type = "int64"),
    problems: [["feature_views[2].entities[0]", /customer_id.*text/]],
  },
  {
    name: "unsupported join key type",
    mutate: (d) => (d.entities[0].value_type = "float64"),
    problems: [["entities[0].value_type", /^unsupported value_type "float64"; expected one of int32/]],
  },
  {
    name: "a required field that is absent",
    mutate: (d) => delete d.feature_views[0].schema[0].dtype,
    problems: [["feature_views[0].schema[0].dtype", /^is missing$/]],
  },
];

describe("invalid definitions are rejected whole, every problem listed by path, nothing changed", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const before = await t.call("GET", "/v1/projects");
      const defs = await exampleDefinitions();
      c.mutate(defs);
      for (const action of ["plan", "apply"]) {
        const res = await t.call("POST", `/v1/projects/defs/${action}`, defs);
        expect(res.status, JSON.stringify(res.body)).toBe(400);
        const body = ErrorBody.parse(res.body);
        expect(body.error.code).toBe("invalid_definitions");
        expect(body.error.details.map((d) => d.path)).toEqual(c.problems.map(([p]) => p));
        c.problems.forEach(([, re], i) => {
          expect(body.error.details[i]?.message).toMatch(re);
        });
      }
      const after = await t.call("GET", "/v1/projects");
      expect(after.body).toEqual(before.body);
    });
  }

  it("lists every problem of a file at once", async () => {
    const defs = await exampleDefinitions();
    // shape problems (an unknown field) and reference problems together
    const independent = [3, 4, 7, 8, 10, 12, 13].map((i) => cases[i]!);
    for (const c of independent) c.mutate(defs);
    const res = await t.call("POST", "/v1/projects/defs/apply", defs);
    expect(res.status).toBe(400);
    const paths = res.body.error.details.map((d: { path: string }) => d.path);
    for (const c of independent) for (const [p] of c.problems) expect(paths).toContain(p);
  });

  it("a file for another project is refused", async () => {
    const defs = await exampleDefinitions();
    defs.project = "other";
    const res = await t.call("POST", "/v1/projects/defs/apply", defs);
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe("project");
  });

  it("the registry still holds exactly the example", async () => {
    const plan = await t.call("POST", "/v1/projects/defs/plan", await exampleDefinitions());
    expect(plan.body.summary).toEqual({ create: 0, update: 0, delete: 0, unchanged: 10 });
    // the table a rejected query tried to drop is still there
    const r = await t.call("POST", "/v1/projects/defs/plan", await exampleDefinitions());
    expect(r.status).toBe(200);
  });

  it("rejects a body that is not an object", async () => {
    for (const body of ["[]", "42", '"x"', "null"]) {
      const res = await t.call("POST", "/v1/projects/defs/plan", body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toMatch(/invalid/);
    }
  });
});

describe("a definitions file the CLI cannot parse", () => {
  it("says where: the line, and a caret under the fault", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "larder-defs-"));
    const file = path.join(dir, "repo.yaml");
    await writeFile(file, "entities:\n  - name: driver\n    join_key: [driver_id\n");
    const err = await readDefinitionsFile(file).catch((e: Error) => e);
    await rm(dir, { recursive: true, force: true });
    expect(err).toBeInstanceOf(Error);
    const lines = (err as Error).message.split("\n");
    expect(lines[0]).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is not valid YAML: .+ at line \\d+, column \\d+:$`),
    );
    expect(lines.some((l) => /^\s*\^+\s*$/.test(l))).toBe(true);
  });
});
