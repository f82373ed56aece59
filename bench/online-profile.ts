/**
 * Where a lookup's time goes, layer by layer (a tool for working on the hot path, not a benchmark of record).
 * In one process, over real HTTP, against real Redis and Postgres, the same lookup served by:
 *   store   — a bare Hono route: c.req.json() → OnlineStore.getOnlineFeatures → c.body
 *   app     — createApp as tests build it (auth off, silent logger)
 *   app+log — createApp with the production logger at info (one line per request, written at once, to a file)
 *   app+buflog — the same with lines buffered (4 KiB) before they are written
 * each loaded by autocannon in a worker thread for PROFILE_SECONDS (default 5).
 *
 *   npx tsx bench/online-profile.ts [entities=1] [views=1]
 * PROFILE_DIR=<dir>: writes <dir>/<variant>.cpuprofile of the server thread for each variant.
 */
import fs from "node:fs";
import { Session } from "node:inspector/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { serve } from "@hono/node-server";
import autocannon from "autocannon";
import { Hono } from "hono";
import pg from "pg";
import pino from "pino";
import { createApp } from "../src/http/app.ts";
import { createLogger } from "../src/logger.ts";
import { createTestContext } from "../test/support/app.ts";

const ENTITIES = Number(process.argv[2] ?? 1);
const VIEWS = Number(process.argv[3] ?? 1);
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 5);
const PROFILE_DIR = process.env.PROFILE_DIR;
const DT = ["float32", "float32", "float32", "float32", "int64", "int64", "int64", "string", "string", "bool"];
const PG: Record<string, string> = { float32: "real", int64: "bigint", string: "text", bool: "boolean" };

const t = await createTestContext({ defaultProject: "bench" });
const c = new pg.Client({ connectionString: t.db.url });
await c.connect();
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
  await t.online.write(
    snap.views.get(`v${v}`)!,
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
const features: string[] = [];
for (let v = 0; v < VIEWS; v++) for (let f = 0; f < 10; f++) features.push(`v${v}:c${v * 10 + f}`);
const body = JSON.stringify({ features, entities: { driver_id: Array.from({ length: ENTITIES }, (_, i) => i + 1) } });

const store = new Hono();
store.post("/get-online-features", async (ctx) => {
  const req = await ctx.req.json();
  const text = await t.online.getOnlineFeatures(snap, req, { maxEntityRows: 1000 });
  return ctx.body(text, 200, { "content-type": "application/json" });
});
const logFile = path.join(os.tmpdir(), `larder-profile-${process.pid}.log`);
const variants: [string, (req: Request) => Response | Promise<Response>][] = [
  ["store", store.fetch],
  ["app", t.app.fetch],
  // as `larder serve` logs: pino's default destination writes each line at once (here to a file rather than stdout)
  [
    "app+log",
    createApp({ ...t.deps, logger: createLogger("info", pino.destination({ dest: logFile, sync: true })) }).fetch,
  ],
  [
    "app+buflog",
    createApp({
      ...t.deps,
      logger: createLogger("info", pino.destination({ dest: logFile, sync: false, minLength: 4096 })),
    }).fetch,
  ],
];

for (const [name, fetch] of variants) {
  const server = serve({ fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise((r) => server.once("listening", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/get-online-features`;
  const load = (duration: number) =>
    autocannon({
      url,
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      connections: 16,
      duration,
      workers: 1,
    });
  await load(2);
  const session = new Session();
  if (PROFILE_DIR) {
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
  }
  const r = await load(SECONDS);
  if (PROFILE_DIR) {
    const { profile } = await session.post("Profiler.stop");
    fs.mkdirSync(PROFILE_DIR, { recursive: true });
    fs.writeFileSync(path.join(PROFILE_DIR, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
  console.log(
    `${name.padEnd(8)} ${ENTITIES}×${VIEWS * 10}: ${(r.requests.total / r.duration).toFixed(0)} req/s, ` +
      `p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${r.errors + r.non2xx}`,
  );
  await new Promise((r) => server.close(r));
}
fs.rmSync(logFile, { force: true });
await t.close();
process.exit(0);
