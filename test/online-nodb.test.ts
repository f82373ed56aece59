import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectPostgres, type Database } from "../src/db/client.ts";
import { type App, createApp } from "../src/http/app.ts";
import { OnlineFeaturesResponse } from "../src/http/online-schemas.ts";
import { silentLogger } from "../src/logger.ts";
import { createIntrospector } from "../src/offline/introspect.ts";
import { RegistryService } from "../src/registry/service.ts";
import { SnapshotCache } from "../src/registry/snapshot-cache.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

/** A TCP proxy to Postgres that can be cut: what the server sees when Postgres goes down. */
function pgProxy(): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(5432, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        cut: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    ),
  );
}

let t: TestContext;
let database: Database;
let snapshots: SnapshotCache;
let app: App;
let proxy: Awaited<ReturnType<typeof pgProxy>>;

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo" });
  proxy = await pgProxy();
  // A second app whose registry and offline database are reached only through the proxy.
  database = connectPostgres(t.db.url.replace("127.0.0.1:5432", `127.0.0.1:${proxy.port}`), { connectTimeoutMs: 1000 });
  const logger = silentLogger();
  const registry = new RegistryService({ db: database.db, logger, introspect: createIntrospector(database.db) });
  snapshots = new SnapshotCache({ registry, logger, pollMs: 60_000 });
  app = createApp({
    ...t.deps,
    db: database.db,
    registry,
    snapshots,
    metrics: undefined,
  });
});
afterAll(async () => {
  snapshots?.stop();
  await database?.close().catch(() => {});
  await t?.close();
});

const call = async (path: string, body: unknown) => {
  const res = await app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};

it("serves lookups and online pushes from the in-memory registry when Postgres is down", async () => {
  const ts = new Date(Date.now() - 60_000).toISOString();
  const push = {
    push_source_name: "driver_stats_push",
    df: { driver_id: [1001], event_timestamp: [ts], conv_rate: [0.5], acc_rate: [0.25] },
  };
  expect((await call("/push", push)).status).toBe(200); // loads the snapshot through the proxy

  await proxy.cut();
  await expect(snapshots.poll()).resolves.toBeUndefined(); // the poll fails quietly…
  expect(snapshots.lastError).toBeTruthy(); // …and says so

  for (const path of ["/get-online-features", "/v1/projects/demo/online-features"]) {
    const res = await call(path, {
      features: ["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats:acc_rate"],
      entities: { driver_id: [1001, "1002"] },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const body = OnlineFeaturesResponse.parse(res.body);
    expect(body.results[1]!.values).toEqual([0.5, null]);
    expect(body.results[2]!.statuses).toEqual(["NOT_FOUND", "NOT_FOUND"]);
  }
  expect((await call("/push", { ...push, df: { ...push.df, conv_rate: [0.75] } })).status).toBe(200);
  // an offline push needs the database: a clean 503
  const offline = await call("/push", { ...push, to: "offline" });
  expect(offline.status, JSON.stringify(offline.body)).toBe(503);
});
