import { tableFromIPC } from "apache-arrow";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsv } from "../src/offline/csv.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

/** The streamed formats of historical retrieval hold exactly what the JSON answer holds. */
let t: TestContext;

const TYPES = [
  ["i32", "integer", "int32"],
  ["i64", "bigint", "int64"],
  ["f32", "real", "float32"],
  ["f64", "double precision", "float64"],
  ["s", "text", "string"],
  ["b", "boolean", "bool"],
  ["raw", "bytea", "bytes"],
  ["at", "timestamptz", "unix_timestamp"],
  ["doc", "jsonb", "json"],
  ["vec", "real[]", "float32[]"],
  ["tags", "text[]", "string[]"],
] as const;

beforeAll(async () => {
  t = await createTestContext();
  const c = new pg.Client({ connectionString: t.db.url });
  await c.connect();
  await c.query(`CREATE TABLE public.typed (id bigint, ts timestamptz, ${TYPES.map(([n, pgType]) => `${n} ${pgType}`).join(", ")});
    INSERT INTO public.typed VALUES
      (1, '2024-01-01Z', 7, 9007199254740993, 1.5, 2.25, 'a,"b"', true, '\\x00ff', '2024-01-01 00:00:00.000123Z', '{"k": [1]}', '{1.5,NULL}', '{x,y}'),
      (2, '2024-01-01Z', NULL, -3, NULL, 1e300, E'line\\nbreak', false, NULL, NULL, 'null', '{}', NULL)`);
  await c.end();
  const res = await t.call("POST", "/v1/projects/p/apply", {
    entities: [{ name: "thing", join_key: "id", value_type: "int64" }],
    data_sources: [{ name: "typed", kind: "postgres", table: "public.typed", timestamp_field: "ts" }],
    feature_views: [
      { name: "v", entities: ["thing"], source: "typed", schema: TYPES.map(([name, , dtype]) => ({ name, dtype })) },
    ],
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
});
afterAll(async () => t?.close());

const REQUEST = {
  entity_df: {
    id: [2, 1, 3, null, 1],
    event_timestamp: ["2024-01-02T00:00:00Z", "2024-01-01T12:00:00.5Z", "2024-01-02Z", "2024-01-02Z", "2023-12-31Z"],
    label: [1, 0, 1, 0, 1],
    note: ["x", null, "y", "z", "w"],
  },
  features: TYPES.map(([n]) => `v:${n}`),
};

async function post(accept: string) {
  return t.app.request("/v1/projects/p/historical-features", {
    method: "POST",
    headers: { "content-type": "application/json", accept },
    body: JSON.stringify(REQUEST),
  });
}

async function jsonAnswer(): Promise<Record<string, unknown[]>> {
  const res = await post("application/json");
  expect(res.status).toBe(200);
  return ((await res.json()) as { df: Record<string, unknown[]> }).df;
}

describe("historical features as CSV, NDJSON and Arrow", () => {
  it("CSV: the JSON answer's columns and values, one row per entity row", async () => {
    const df = await jsonAnswer();
    const res = await post("text/csv");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    const text = await res.text();
    const rows: string[][] = [];
    for await (const r of parseCsv(
      (async function* () {
        yield text;
      })(),
    ))
      rows.push(r);
    expect(rows[0]).toEqual(Object.keys(df));
    expect(rows.length - 1).toBe(5);
    const asCsv = (v: unknown) => (v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
    Object.entries(df).forEach(([name, values], j) => {
      expect(
        rows.slice(1).map((r) => r[j]),
        name,
      ).toEqual(values.map(asCsv));
    });
  });

  it("NDJSON: one object per row holding the JSON answer's values", async () => {
    const df = await jsonAnswer();
    const res = await post("application/x-ndjson");
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const rows = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const [name, values] of Object.entries(df))
      expect(
        rows.map((r) => r[name]),
        name,
      ).toEqual(values);
  });

  it("Arrow: typed columns (Int64, Timestamp[us, UTC], List, …) equal to the JSON answer", async () => {
    const df = await jsonAnswer();
    const res = await post("application/vnd.apache.arrow.stream");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.apache.arrow.stream");
    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    expect(table.numRows).toBe(5);
    expect(table.schema.fields.map((f) => f.name)).toEqual(Object.keys(df));
    const type = (name: string) => String(table.schema.fields.find((f) => f.name === name)!.type);
    expect(type("id")).toBe("Int64");
    expect(type("event_timestamp")).toBe("Timestamp<MICROSECOND, UTC>");
    expect(type("at")).toBe("Timestamp<MICROSECOND, UTC>");
    expect(type("i64")).toBe("Int64");
    expect(type("i32")).toBe("Int32");
    expect(type("f32")).toBe("Float32");
    expect(type("vec")).toBe("List<Float32>");
    expect(type("tags")).toBe("List<Utf8>");
    expect(type("raw")).toBe("Binary");
    expect(type("label")).toBe("Int64");
    expect(type("note")).toBe("Utf8");
    const micros = (v: unknown) => (v === null ? null : BigInt(Math.round(Date.parse(String(v)) * 1000)));
    const col = (name: string) => table.getChild(name)!.toArray() as ArrayLike<unknown>;
    const listOf = (name: string) => [...Array(5).keys()].map((i) => table.getChild(name)!.get(i) ?? null);
    expect(Array.from(col("id"))).toEqual(
      df.id!.map((v) => (v === null ? null : BigInt(v as number))).map((v) => v ?? 0n),
    );
    expect(table.getChild("id")!.get(3)).toBeNull();
    // Timestamp[us] arrays hold epoch microseconds
    expect([...Array(5).keys()].map((i) => table.getChild("event_timestamp")!.data[0]!.values[i])).toEqual(
      df.event_timestamp!.map(micros),
    );
    const at = table.getChild("at")!.data[0]!;
    expect(at.values[1]).toBe(1704067200000123n); // the microsecond survives
    expect(table.getChild("at")!.get(0)).toBeNull();
    expect([...Array(5).keys()].map((i) => table.getChild("i64")!.get(i))).toEqual(
      df.i64!.map((v) => (v === null ? null : BigInt(v as number | string))),
    );
    expect([...Array(5).keys()].map((i) => table.getChild("label")!.get(i))).toEqual(
      df.label!.map((v) => BigInt(v as number)),
    );
    for (const name of ["i32", "f32", "f64", "s", "b", "note"])
      expect(
        [...Array(5).keys()].map((i) => table.getChild(name)!.get(i)),
        name,
      ).toEqual(df[name]);
    expect(
      [...Array(5).keys()].map((i) => {
        const b = table.getChild("raw")!.get(i) as Uint8Array | null;
        return b === null ? null : Buffer.from(b).toString("base64");
      }),
    ).toEqual(df.raw);
    expect([...Array(5).keys()].map((i) => JSON.parse(table.getChild("doc")!.get(i) ?? "null"))).toEqual(
      df.doc!.map((v) => v ?? null),
    );
    expect(listOf("vec").map((l) => (l ? [...l] : null))).toEqual(df.vec);
    expect(listOf("tags").map((l) => (l ? [...l] : null))).toEqual(df.tags);
  });

  it("an empty entity dataframe: a header, or an Arrow stream with the schema and no rows", async () => {
    const body = JSON.stringify({ entity_df: { id: [], event_timestamp: [] }, features: ["v:i64"] });
    const headers = { "content-type": "application/json" };
    const csv = await t.app.request("/v1/projects/p/historical-features", {
      method: "POST",
      headers: { ...headers, accept: "text/csv" },
      body,
    });
    expect(await csv.text()).toBe("id,event_timestamp,i64\n");
    const arrow = await t.app.request("/v1/projects/p/historical-features", {
      method: "POST",
      headers: { ...headers, accept: "application/vnd.apache.arrow.stream" },
      body,
    });
    const table = tableFromIPC(new Uint8Array(await arrow.arrayBuffer()));
    expect(table.numRows).toBe(0);
    expect(table.schema.fields.map((f) => f.name)).toEqual(["id", "event_timestamp", "i64"]);
  });

  it("more entity rows than one load chunk: the same rows, in order, as the JSON answer; a bad row past it is a 400", async () => {
    const n = 12_001;
    const entity_df = {
      id: Array.from({ length: n }, (_, i) => (i % 4 === 3 ? null : 1 + (i % 4))),
      event_timestamp: Array.from({ length: n }, (_, i) => (i % 2 ? "2024-01-02Z" : "2023-12-31Z")),
    };
    const ask = (accept: string, df: Record<string, unknown[]>) =>
      t.app.request("/v1/projects/p/historical-features", {
        method: "POST",
        headers: { "content-type": "application/json", accept },
        body: JSON.stringify({ entity_df: df, features: ["v:i64", "v:s"] }),
      });
    const json = (await (await ask("application/json", entity_df)).json()) as { df: Record<string, unknown[]> };
    const ndjson = await ask("application/x-ndjson", entity_df);
    expect(ndjson.status).toBe(200);
    const rows = (await ndjson.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(n);
    expect(rows.map((r) => r.i64)).toEqual(json.df.i64);
    expect(rows.map((r) => r.s)).toEqual(json.df.s);
    expect(rows.map((r) => r.id)).toEqual(entity_df.id);

    const bad = { ...entity_df, event_timestamp: entity_df.event_timestamp.map((v, i) => (i === 11_000 ? "nope" : v)) };
    const res = await ask("text/csv", bad);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /entity_df\.event_timestamp\[11000\]/,
    );
  });

  it("bad input is still a JSON 400 when a stream was asked for", async () => {
    const res = await t.app.request("/v1/projects/p/historical-features", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/csv" },
      body: JSON.stringify({ entity_df: { id: [1] }, features: ["v:i64"] }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/event_timestamp/);
  });
});
