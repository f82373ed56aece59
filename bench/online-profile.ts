// scratch: in-process lookups through app.fetch, to profile the handler without HTTP
import { createTestContext } from "../test/support/app.ts";

const t = await createTestContext({ defaultProject: "bench" });
const pg = await import("pg");
const c = new pg.default.Client({ connectionString: t.db.url });
await c.connect();
const DT = ["float32", "float32", "float32", "float32", "int64", "int64", "int64", "string", "string", "bool"];
const PG: Record<string, string> = { float32: "real", int64: "bigint", string: "text", bool: "boolean" };
await c.query(
  `CREATE TABLE bench_src (driver_id bigint, event_timestamp timestamptz, ${Array.from({ length: 50 }, (_, i) => `c${i} ${PG[DT[i % 10]!]}`).join(",")})`,
);
await c.end();
await t.deps.registry.apply("bench", {
  entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
  data_sources: [{ name: "s", kind: "postgres", table: "public.bench_src" }],
  feature_views: Array.from({ length: 5 }, (_, v) => ({
    name: `v${v}`,
    entities: ["driver"],
    source: "s",
    ttl: "1d",
    schema: DT.map((d, f) => ({ name: `c${v * 10 + f}`, dtype: d })),
  })),
} as never);
const snap = await t.deps.snapshots.reload("bench");
for (let v = 0; v < 5; v++) {
  const view = snap.views.get(`v${v}`)!;
  await t.online.write(
    view,
    Array.from({ length: 1000 }, (_, i) => ({
      key: [String(i + 1)],
      eventTs: Date.now() * 1000 - 6e7,
      createdTs: 0,
      values: DT.map((d, f) =>
        d === "float32"
          ? Math.round((i * 7919) % 10000) / 10000
          : d === "int64"
            ? i * 31 + f
            : d === "string"
              ? `s${i}-${f}-abcdef`
              : i % 2 === 0,
      ),
    })),
  );
}
const ents = Number(process.argv[2] ?? 1),
  views = Number(process.argv[3] ?? 1);
const features: string[] = [];
for (let v = 0; v < views; v++) for (let f = 0; f < 10; f++) features.push(`v${v}:c${v * 10 + f}`);
const body = JSON.stringify({ features, entities: { driver_id: Array.from({ length: ents }, (_, i) => i + 1) } });
const N = Number(process.argv[4] ?? 5000);
const one = async () => {
  const r = await t.app.fetch(
    new Request("http://x/get-online-features", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    }),
  );
  if (r.status !== 200) throw new Error(await r.text());
  await r.text();
};
for (let i = 0; i < 2000; i++) await one();
const { Session } = await import("node:inspector/promises");
const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.start");
let t0 = performance.now();
for (let i = 0; i < N; i++) await one();
const { profile } = await session.post("Profiler.stop");
(await import("node:fs")).writeFileSync("/tmp/prof/loop.cpuprofile", JSON.stringify(profile));
console.log(`app.fetch ${ents}x${views * 10}: ${(N / ((performance.now() - t0) / 1000)).toFixed(0)} req/s sequential`);
t0 = performance.now();
const req = { features, entities: { driver_id: Array.from({ length: ents }, (_, i) => i + 1) } };
for (let i = 0; i < N; i++) await t.online.getOnlineFeatures(snap, req, { maxEntityRows: 1000 });
console.log(`store only: ${(N / ((performance.now() - t0) / 1000)).toFixed(0)} req/s sequential`);
// variants: bare Hono + c.req.json + store; and OpenAPIHono route with validation but no middleware
const { Hono } = await import("hono");
const bare = new Hono();
bare.post("/get-online-features", async (c) => {
  const b = await c.req.json();
  return c.body(await t.online.getOnlineFeatures(snap, b, { maxEntityRows: 1000 }), 200, {
    "content-type": "application/json",
  });
});
const time = async (label: string, f: () => Promise<Response>) => {
  for (let i = 0; i < 1000; i++) await (await f()).text();
  const t1 = performance.now();
  for (let i = 0; i < N; i++) await (await f()).text();
  console.log(`${label}: ${(N / ((performance.now() - t1) / 1000)).toFixed(0)} req/s sequential`);
};
const mk = () =>
  new Request("http://x/get-online-features", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
await time("bare hono", async () => bare.fetch(mk()));
await time("full app", async () => t.app.fetch(mk()));
await time("bare hono", async () => bare.fetch(mk()));
await time("full app", async () => t.app.fetch(mk()));
await t.close();
