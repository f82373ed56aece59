/** Extra definitions for the online and push tests: every dtype, a composite key, a push source feeding two views. */
import pg from "pg";
import { exampleDefinitions, type TestContext } from "./support/app.ts";

export const EXTRA_TABLES = `
CREATE TABLE public.typed (
  driver_id bigint, event_timestamp timestamptz NOT NULL, created timestamptz,
  i32 int, i64 bigint, f32 real, f64 double precision, s text, b bytea, flag boolean, ts timestamptz,
  doc jsonb, fl real[], sl text[], il bigint[]
);
CREATE TABLE public.trips (driver_id bigint, customer_id text, event_timestamp timestamptz NOT NULL, trips bigint, rating double precision);
CREATE TABLE public.by_query_base (driver_id bigint, event_timestamp timestamptz NOT NULL, x real);
`;

export async function applyOnlineFixtures(t: TestContext, project = "demo"): Promise<void> {
  const client = new pg.Client({ connectionString: t.db.url });
  await client.connect();
  try {
    await client.query(EXTRA_TABLES);
  } finally {
    await client.end();
  }
  const defs = await exampleDefinitions();
  defs.data_sources.push(
    {
      name: "typed_source",
      kind: "postgres",
      table: "public.typed",
      timestamp_field: "event_timestamp",
      created_timestamp_field: "created",
    },
    { name: "typed_push", kind: "push", batch_source: "typed_source" },
    { name: "trips_source", kind: "postgres", table: "public.trips", timestamp_field: "event_timestamp" },
    {
      name: "query_source",
      kind: "postgres",
      query: "select * from public.by_query_base",
      timestamp_field: "event_timestamp",
    },
    { name: "query_push", kind: "push", batch_source: "query_source" },
  );
  defs.feature_views.push(
    {
      name: "typed",
      entities: ["driver"],
      source: "typed_push",
      ttl: 0,
      schema: [
        { name: "i32", dtype: "int32" },
        { name: "i64", dtype: "int64" },
        { name: "f32", dtype: "float32" },
        { name: "f64", dtype: "float64" },
        { name: "s", dtype: "string" },
        { name: "b", dtype: "bytes" },
        { name: "flag", dtype: "bool" },
        { name: "ts", dtype: "unix_timestamp" },
        { name: "doc", dtype: "json" },
        { name: "fl", dtype: "float32[]" },
        { name: "sl", dtype: "string[]" },
        { name: "il", dtype: "int64[]" },
      ],
    },
    {
      name: "typed_short",
      entities: ["driver"],
      source: "typed_push",
      ttl: 60,
      schema: [
        { name: "i64", dtype: "int64" },
        { name: "s", dtype: "string" },
      ],
    },
    {
      name: "trips",
      entities: ["driver", "customer"],
      source: "trips_source",
      ttl: 7200,
      schema: [
        { name: "trips", dtype: "int64" },
        { name: "rating", dtype: "float64" },
      ],
    },
    {
      name: "offline_only",
      entities: ["driver"],
      source: "query_push",
      online: false,
      schema: [{ name: "x", dtype: "float32" }],
    },
  );
  defs.feature_services.push({
    name: "typed_service",
    features: [{ feature_view: "typed", features: ["s", "i64"] }, { feature_view: "trips" }],
  });
  await t.deps.registry.apply(project, defs);
  await t.deps.snapshots.reload(project);
}

export const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");
