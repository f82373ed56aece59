import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LarderClient, LarderError } from "../clients/typescript/src/index.ts";
import { applyOnlineFixtures, iso } from "./online-fixtures.ts";
import { createTestContext, exampleDefinitions, type TestContext } from "./support/app.ts";
import { type Listening, listen } from "./support/listen.ts";
import { freePort, ROOT } from "./support/process.ts";

let t: TestContext;
let server: Listening;
const key: Record<string, string> = {};
const now = Math.floor(Date.now() / 1000) * 1000;

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo", auth: true });
  await applyOnlineFixtures(t);
  const store = t.keys!.store;
  key.read = (await store.create({ scope: "read" })).key;
  key.write = (await store.create({ scope: "write" })).key;
  key.admin = (await store.create({ scope: "admin" })).key;
  server = await listen(t.app);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

type Options = Partial<ConstructorParameters<typeof LarderClient>[0]>;
const client = (opts: Options = {}) => new LarderClient({ url: server.url, apiKey: key.admin, ...opts });

/**
 * The two ways the client sends requests: on Node by default `node:http` with its own keep-alive agent; `fetch` when
 * asked (or given a fetch, or off Node). The behaviours below hold for both.
 */
const TRANSPORTS: { name: string; options: Options }[] = [
  { name: "node:http (the default on Node)", options: {} },
  { name: "fetch", options: { transport: "fetch" } },
];

/** Whether the server side of a connection closes within `ms`. */
function closesWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A server that takes requests and never answers, with the server side of the connection of each request it got. */
async function silentServer() {
  const sockets: Socket[] = [];
  const connections: Socket[] = []; // fetch (undici) opens a spare one after a connection it used closes
  const srv = createServer((req) => sockets.push(req.socket));
  srv.on("connection", (s) => connections.push(s));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    sockets,
    close: async () => {
      for (const s of connections) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<LarderError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LarderError);
    return e as LarderError;
  }
  throw new Error("expected the call to fail");
}

/** A proxy in front of the server that counts requests and answers 503 to the first `fail503` of them. */
async function countingProxy(target: string, fail503: number) {
  const seen: {
    method: string;
    path: string;
    requestId: string | undefined;
    headers: IncomingHttpHeaders;
    body: string;
  }[] = [];
  let answered = 0;
  const srv: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    seen.push({
      method: req.method ?? "",
      path: req.url ?? "",
      requestId: req.headers["x-request-id"] as string | undefined,
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    });
    if (++answered <= fail503) {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "unavailable", message: "online store down", details: [] } }));
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host") headers[k] = v;
    const upstream = await fetch(target + req.url, {
      method: req.method,
      headers,
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

describe.each(TRANSPORTS.map((t, i) => ({ ...t, i })))("TypeScript client over $name", ({ options, i }) => {
  const over = (opts: Options = {}) => client({ ...options, ...opts });
  const bare = (opts: Options & { url: string }) => new LarderClient({ ...options, ...opts });

  it("pushes, then looks up by features on the default project: Feast shape, rows(), rowsWithStatus()", async () => {
    const c = over({ apiKey: key.write });
    const [a, b] = [7001 + 10 * i, 7002 + 10 * i]; // entities of this transport's own, so that its push writes both
    const pushed = await c.push({
      pushSourceName: "driver_stats_push",
      df: {
        driver_id: [a, b],
        event_timestamp: [new Date(now - 60_000), iso(now - 30_000)],
        conv_rate: [0.25, 0.5],
        acc_rate: [0.75, null],
      },
    });
    expect(pushed).toEqual({ rows: 2, written: 2, skipped_older: 0 });
    const answer = await c.getOnlineFeatures<{ driver_id: number; conv_rate: number | null; acc_rate: number | null }>({
      features: ["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats_fresh:acc_rate"],
      entities: { driver_id: [a, String(b), 7999] },
    });
    expect(answer.metadata.feature_names).toEqual(["driver_id", "conv_rate", "acc_rate"]);
    expect(answer.results[1]!.statuses).toEqual(["PRESENT", "PRESENT", "NOT_FOUND"]);
    expect(answer.rows()).toEqual([
      { driver_id: a, conv_rate: 0.25, acc_rate: 0.75 },
      { driver_id: b, conv_rate: 0.5, acc_rate: null },
      { driver_id: 7999, conv_rate: null, acc_rate: null },
    ]);
    const withStatus = answer.rowsWithStatus();
    expect(withStatus[1]!.acc_rate).toMatchObject({ value: null, status: "NULL_VALUE" });
    expect(withStatus[0]!.conv_rate).toEqual({ value: 0.25, status: "PRESENT", eventTimestamp: iso(now - 60_000) });
    expect(JSON.parse(JSON.stringify(answer))).toEqual({ metadata: answer.metadata, results: answer.results });
  });

  it("int64: decimal strings by default, bigint by option (features and join keys, both ways)", async () => {
    const big = "9007199254740993";
    await over().push({
      pushSourceName: "typed_push",
      df: {
        ...Object.fromEntries(
          ["i32", "f32", "f64", "s", "flag", "ts", "doc", "fl", "sl"].map((c) => [c, [null, null]]),
        ),
        driver_id: [BigInt(big), 8002],
        event_timestamp: [iso(now), iso(now)],
        i64: [BigInt(big), 5],
        il: [[BigInt(big), 1], null],
        b: [new Uint8Array([0, 1, 2]), null],
      },
    });
    const req = { features: ["typed:i64", "typed:il", "typed:b"], entities: { driver_id: [big, 8002] } };
    expect((await over().getOnlineFeatures(req)).rows()).toEqual([
      { driver_id: big, i64: big, il: [big, 1], b: "AAEC" },
      { driver_id: 8002, i64: 5, il: null, b: null },
    ]);
    const asBig = over({ int64: "bigint" });
    expect((await asBig.getOnlineFeatures(req)).rows()).toEqual([
      { driver_id: BigInt(big), i64: BigInt(big), il: [BigInt(big), 1n], b: "AAEC" },
      { driver_id: 8002n, i64: 5n, il: null, b: null },
    ]);
    const viaService = await asBig.getOnlineFeatures({
      featureService: "typed_service",
      entities: { driver_id: [big], customer_id: ["c1"] },
    });
    expect(viaService.rows()[0]).toMatchObject({ s: null, i64: BigInt(big) });
  });

  it("errors: 400 with code and details, 401, 403, 404, each with the request id", async () => {
    const c = over();
    const badLookup = { features: ["driver_hourly_stats:nope"], entities: { driver_id: [1] } };
    const bad = await rejection(c.getOnlineFeatures(badLookup));
    expect(bad.status).toBe(400);
    expect(bad.code).toBe("invalid_argument");
    expect(bad.message).toMatch(/nope/);
    expect(bad.requestId).toMatch(/[0-9a-f-]{36}/);
    // each call its own id: the client's random prefix and a counter
    const next = (await rejection(c.getOnlineFeatures(badLookup))).requestId!;
    expect(next).not.toBe(bad.requestId);
    expect(next.slice(0, 36)).toBe(bad.requestId!.slice(0, 36));

    const withId = await rejection(over().getOnlineFeatures(badLookup, { requestId: "my-request-1" }));
    expect(withId.requestId).toBe("my-request-1");

    const noKey = await rejection(over({ apiKey: undefined, project: "demo" }).listEntities());
    expect([noKey.status, noKey.code]).toEqual([401, "unauthenticated"]);
    const readOnly = await rejection(
      over({ apiKey: key.read }).push({ pushSourceName: "driver_stats_push", df: { driver_id: [1] } }),
    );
    expect([readOnly.status, readOnly.code]).toEqual([403, "permission_denied"]);
    const missing = await rejection(over({ project: "demo" }).getFeatureView("no_such_view"));
    expect([missing.status, missing.code]).toEqual([404, "not_found"]);
    const pushBad = await rejection(
      over().push({ pushSourceName: "driver_stats_push", df: { driver_id: [1], event_timestamp: ["x"] } }),
    );
    expect(pushBad.status).toBe(400);
    expect(pushBad.details.length).toBeGreaterThan(0);
  });

  it("a closed port fails within the timeout, after its retries", async () => {
    const port = await freePort();
    const c = bare({ url: `http://127.0.0.1:${port}`, timeoutMs: 1500, retries: 3 });
    const started = Date.now();
    const e = await rejection(c.getOnlineFeatures({ features: ["v:f"], entities: { k: [1] } }));
    expect(Date.now() - started).toBeLessThan(1500);
    expect([e.status, e.code]).toEqual([0, "connection_error"]);
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it("a server that does not answer fails at the timeout, and the connection is closed; so does an abort", async () => {
    const silent = await silentServer();
    try {
      const c = bare({ url: silent.url, timeoutMs: 300 });
      const started = Date.now();
      const e = await rejection(c.health());
      const took = Date.now() - started;
      expect([e.status, e.code]).toEqual([0, "timeout"]);
      expect(took).toBeGreaterThanOrEqual(290);
      expect(took).toBeLessThan(1000);
      // the call past its budget holds no socket: the server sees its connection go
      expect(silent.sockets).toHaveLength(1);
      expect(silent.sockets[0]!.destroyed).toBe(false); // (not closed yet by the server itself)
      expect(await closesWithin(silent.sockets[0]!, 1000)).toBe(true);

      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const started2 = Date.now();
      expect((await rejection(c.health({ signal: controller.signal }))).code).toBe("aborted");
      expect(Date.now() - started2).toBeLessThan(250);
      expect(silent.sockets).toHaveLength(2);
      expect(await closesWithin(silent.sockets[1]!, 1000)).toBe(true);
    } finally {
      await silent.close();
    }
  });

  it("a 503 is retried (same request id) and a 400 is not; retries: 0 gives the 503", async () => {
    const driver = 7003 + 10 * i;
    await over().push({
      pushSourceName: "driver_stats_push",
      df: { driver_id: [driver], event_timestamp: [iso(now - 60_000)], conv_rate: [0.5], acc_rate: [0.5] },
    });
    const proxy = await countingProxy(server.url, 2);
    try {
      const c = bare({ url: proxy.url, apiKey: key.read, retries: 2 });
      const answer = await c.getOnlineFeatures({
        features: ["driver_hourly_stats_fresh:conv_rate"],
        entities: { driver_id: [driver] },
      });
      expect(answer.results[1]!.statuses).toEqual(["PRESENT"]);
      expect(proxy.seen).toHaveLength(3);
      expect(new Set(proxy.seen.map((s) => s.requestId)).size).toBe(1);

      proxy.seen.length = 0;
      const bad = await rejection(
        c.getOnlineFeatures({ features: ["driver_hourly_stats:nope"], entities: { driver_id: [1001] } }),
      );
      expect(bad.status).toBe(400);
      expect(proxy.seen).toHaveLength(1);
    } finally {
      await proxy.close();
    }
    const always = await countingProxy(server.url, 100);
    try {
      const e = await rejection(bare({ url: always.url, retries: 0 }).listProjects());
      expect([e.status, e.code, e.message]).toEqual([503, "unavailable", "online store down"]);
      expect(always.seen).toHaveLength(1);
      always.seen.length = 0;
      // materialisation is not idempotent on a lost connection, but a 503 means the server did nothing: retried
      await rejection(bare({ url: always.url, retries: 1 }).materialize({ startTs: 0, endTs: 1, featureViews: [] }));
      expect(always.seen).toHaveLength(2);
    } finally {
      await always.close();
    }
  });
});

describe("TypeScript client: transports", () => {
  it("both send the same request: method, path and query, the client's headers, the body", async () => {
    const proxy = await countingProxy(server.url, 0);
    try {
      const call = (options: Options) =>
        new LarderClient({
          url: `${proxy.url}/`,
          apiKey: key.read,
          project: "demo",
          headers: { "x-trace": "t-1" },
          ...options,
        }).request("POST", "/v1/projects/demo/online-features", {
          query: { a: "é b" },
          body: { features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001, 9007199254740993n] } },
          requestId: "same-1",
        });
      const answers = [];
      for (const t of TRANSPORTS) answers.push(await call(t.options));
      expect(answers[0]).toEqual(answers[1]);
      const [viaNode, viaFetch] = proxy.seen;
      const ours = ["authorization", "x-request-id", "content-type", "accept", "content-length", "x-trace"];
      const pick = (h: IncomingHttpHeaders) => Object.fromEntries(ours.map((k) => [k, h[k]]));
      expect(pick(viaNode!.headers)).toEqual(pick(viaFetch!.headers));
      expect(pick(viaNode!.headers)).toMatchObject({
        authorization: `Bearer ${key.read}`,
        "x-request-id": "same-1",
        "content-type": "application/json",
        "x-trace": "t-1",
      });
      expect([viaNode!.method, viaNode!.path, viaNode!.body]).toEqual([
        viaFetch!.method,
        viaFetch!.path,
        viaFetch!.body,
      ]);
      expect(viaNode!.path).toBe("/v1/projects/demo/online-features?a=%C3%A9+b");
      expect(JSON.parse(viaNode!.body).entities.driver_id).toEqual([1001, "9007199254740993"]);
      // which transport sent which: Node's fetch (undici) names itself, node:http sends no user agent
      expect(viaFetch!.headers["user-agent"]).toMatch(/^(node|undici)$/);
      expect(viaNode!.headers["user-agent"]).toBeUndefined();
      // a fetch of the caller's own is used as given
      let given = 0;
      const counted: typeof fetch = (input, init) => {
        given++;
        return fetch(input, init);
      };
      await call({ fetch: counted });
      expect(given).toBe(1);
      expect(proxy.seen[2]!.headers["user-agent"]).toMatch(/^(node|undici)$/);
    } finally {
      await proxy.close();
    }
  });

  it("on Node, an idle client does not keep the process alive; close() closes its connections", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "larder-client-"));
    try {
      const script = path.join(dir, "once.mts");
      await writeFile(
        script,
        `import { LarderClient } from ${JSON.stringify(path.join(ROOT, "clients/typescript/src/index.ts"))};
const c = new LarderClient({ url: process.argv[2]! });
console.log((await c.health()).status);
`,
      );
      // the server keeps idle connections for 65 s: a process held by its socket would not end within the test
      const run = await new Promise<{ code: number | null; out: string; ms: number }>((resolve, reject) => {
        const started = Date.now();
        const child = spawn(process.execPath, ["--import", "tsx", script, server.url], {
          cwd: ROOT,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (out += d));
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`the script did not exit on its own within 20 s:\n${out}`));
        }, 20_000);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, out, ms: Date.now() - started });
        });
      });
      expect(run.code, run.out).toBe(0);
      expect(run.out.trim()).toBe("ok");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    // close(): the server sees the kept-alive connection go; a later call opens a new one
    const sockets: Socket[] = [];
    const srv = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
    srv.on("connection", (s) => sockets.push(s));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const c = new LarderClient({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
      await c.request("GET", "/a");
      await c.request("GET", "/b");
      expect(sockets).toHaveLength(1); // kept alive
      c.withProject("other").close(); // one pool for both
      expect(await closesWithin(sockets[0]!, 1000)).toBe(true);
      await c.request("GET", "/c");
      expect(sockets).toHaveLength(2);
      c.close();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describe("TypeScript client against a real server", () => {
  it("materialises, then looks up by feature service with a project, full feature names; reads jobs", async () => {
    const c = client({ project: "demo" });
    const { jobs } = await c.materialize({
      startTs: new Date(now - 3 * 86400_000),
      endTs: new Date(now + 3600_000),
      featureViews: ["driver_hourly_stats"],
    });
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ feature_view: "driver_hourly_stats", status: "succeeded" });
    expect(jobs[0]!.rows_written).toBe(50);
    const incr = await c.materializeIncremental({
      endTs: new Date(now + 3600_000),
      featureViews: ["driver_hourly_stats"],
    });
    expect(incr.jobs[0]).toMatchObject({ status: "succeeded", rows_written: 0 });
    expect((await c.listMaterializationJobs({ featureView: "driver_hourly_stats" })).map((j) => j.id)).toContain(
      jobs[0]!.id,
    );
    expect((await c.getMaterializationJob(jobs[0]!.id)).status).toBe("succeeded");

    const answer = await c.getOnlineFeatures({
      featureService: "driver_activity",
      entities: { driver_id: [1001, 1002] },
      fullFeatureNames: true,
    });
    expect(answer.metadata.feature_names).toEqual([
      "driver_id",
      "driver_hourly_stats__conv_rate",
      "driver_hourly_stats__avg_daily_trips",
    ]);
    const rows = answer.rows();
    expect(rows).toHaveLength(2);
    expect(typeof rows[0]!.driver_hourly_stats__conv_rate).toBe("number");
    expect(answer.results[2]!.statuses).toEqual(["PRESENT", "PRESENT"]);
  });

  it("materialise with partitions, then freshness, verify and stats against the stores' real contents", async () => {
    const c = client({ project: "demo", apiKey: key.write });
    const end = new Date(now + 3600_000);
    const { jobs } = await c.materialize({
      startTs: new Date(now - 8 * 86400_000),
      endTs: end,
      featureViews: ["customer_profile"],
      partitions: 2,
    });
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ feature_view: "customer_profile", status: "succeeded", rows_written: 20 });
    expect(jobs[0]!.partitions.map((p) => [p.index, p.status])).toEqual([
      [0, "succeeded"],
      [1, "succeeded"],
    ]);
    expect(jobs[0]!.partitions.reduce((n, p) => n + p.rows_written, 0)).toBe(20);
    expect((await c.getMaterializationJob(jobs[0]!.id)).partitions).toHaveLength(2);
    const incr = await c.materializeIncremental({ endTs: end, featureViews: ["customer_profile"], partitions: 2 });
    expect(incr.jobs[0]).toMatchObject({ status: "succeeded", rows_written: 0 });
    expect(incr.jobs[0]!.partitions).toHaveLength(2);

    // freshness: a push moves last_push_event_timestamp; a materialisation moves last_materialized_end
    const reader = client({ project: "demo", apiKey: key.read });
    await c.push({
      pushSourceName: "driver_stats_push",
      df: { driver_id: [7301], event_timestamp: [iso(now - 5_000)], conv_rate: [0.5], acc_rate: [0.5] },
    });
    const fresh = await reader.freshness("driver_hourly_stats_fresh");
    expect(Date.parse(fresh.last_push_event_timestamp!)).toBeGreaterThanOrEqual(now - 5_000);
    expect(fresh.last_materialized_end).toBeNull();
    expect(fresh.newest_offline_event_timestamp).not.toBeNull();
    expect(fresh.lag_seconds).toBeGreaterThanOrEqual(0);
    expect(fresh.lag_seconds).toBeLessThan(600);
    const materialized = await reader.freshness("customer_profile");
    expect(Date.parse(materialized.last_materialized_end!)).toBe(end.getTime());
    expect(materialized.last_push_event_timestamp).toBeNull();
    expect(materialized.lag_seconds).toBeLessThan(0); // the window ended in the future
    expect((await rejection(reader.freshness("no_such_view"))).status).toBe(404);

    // verify: the view just materialised matches; the push-fed view that was never materialised is missing online
    const consistent = await reader.verify({ featureViews: ["customer_profile"] });
    expect(Number.isNaN(Date.parse(consistent.as_of))).toBe(false);
    expect(consistent.results).toEqual([
      {
        feature_view: "customer_profile",
        sampled: 20,
        matching: 20,
        mismatching: 0,
        missing_online: 0,
        examples: [],
      },
    ]);
    const missing = (await reader.verify({ featureViews: ["driver_hourly_stats_fresh"], sample: 10 })).results[0]!;
    expect(missing).toMatchObject({ sampled: 10, matching: 0, mismatching: 0, missing_online: 10 });
    expect(missing.examples[0]).toMatchObject({ issue: "missing_online", online_status: "NOT_FOUND" });

    // stats: 50 drivers × 168 hours in the batch table; one hour of it is 50 rows
    const stats = await reader.stats("driver_hourly_stats");
    expect(stats).toMatchObject({ feature_view: "driver_hourly_stats", start_ts: null, end_ts: null, rows: 8400 });
    const conv = stats.features.find((f) => f.name === "conv_rate")!;
    expect(conv).toMatchObject({ dtype: "float32", count: 8400, null_count: 0, top_values: null });
    expect(conv.min).toBeGreaterThanOrEqual(0);
    expect(conv.max).toBeLessThanOrEqual(1);
    expect(conv.histogram).toHaveLength(10);
    expect(conv.histogram!.reduce((n, b) => n + b.count, 0)).toBe(8400);
    const hour = Math.floor(now / 3600_000) * 3600_000 - 5 * 3600_000;
    const window = await reader.stats("driver_hourly_stats", {
      startTs: new Date(hour),
      endTs: iso(hour + 3600_000),
    });
    expect(window.rows).toBe(50);
    expect(Date.parse(window.start_ts!)).toBe(hour);
    expect(window.features.every((f) => f.count === 50)).toBe(true);
    expect((await reader.stats("driver_hourly_stats", { startTs: 0, endTs: 1 })).rows).toBe(0);
  });

  it("historical features: point-in-time rows in request order", async () => {
    const c = client();
    const hourAgo = new Date(Math.floor(now / 3600_000) * 3600_000 - 3600_000);
    const hist = await c.historicalFeatures<{ driver_id: number; conv_rate: number | null }>({
      entityDf: { driver_id: [1002, 1001, 4242], event_timestamp: [hourAgo, hourAgo, hourAgo] },
      features: ["driver_hourly_stats:conv_rate"],
    });
    expect(hist.length).toBe(3);
    const rows = hist.rows();
    expect(rows.map((r) => r.driver_id)).toEqual([1002, 1001, 4242]);
    expect(typeof rows[0]!.conv_rate).toBe("number");
    expect(rows[2]!.conv_rate).toBeNull();
  });

  it("registry reads, plan and apply, health", async () => {
    const c = client({ project: "demo" });
    expect((await c.listProjects()).map((p) => p.name)).toContain("demo");
    expect((await c.listEntities()).map((e) => e.name)).toEqual(expect.arrayContaining(["driver", "customer"]));
    const view = await c.getFeatureView("driver_hourly_stats");
    expect(view.spec.schema.map((f) => f.name)).toEqual(["conv_rate", "acc_rate", "avg_daily_trips"]);
    expect((await c.featureViewVersions("driver_hourly_stats"))[0]!.change).toBe("create");
    expect((await c.getFeatureService("driver_activity")).spec.features[0]!.feature_view).toBe("driver_hourly_stats");
    expect((await c.listFeatureServices()).length).toBeGreaterThan(0);
    expect((await c.listDataSources()).map((s) => s.name)).toContain("driver_stats_push");
    expect((await c.getDataSource("driver_stats_push")).spec.kind).toBe("push");

    const defs = await exampleDefinitions();
    const plan = await c.plan(defs);
    expect(plan.applied).toBe(false);
    expect(plan.summary.delete).toBeGreaterThan(0); // the fixtures' extra views are not in the example file
    const scratch = c.withProject("scratch");
    const applied = await scratch.apply(defs);
    expect(applied).toMatchObject({ applied: true, project: "scratch" });
    expect((await scratch.apply(defs)).summary.create).toBe(0);

    const health = await client({ apiKey: undefined }).health();
    expect(health).toMatchObject({ status: "ok", registry: { project: "demo" }, online_store: { mode: "single" } });
  });

  it("the project of the root endpoints comes from /health when a call needs its name", async () => {
    const c = client();
    expect(await c.projectName()).toBe("demo");
    expect((await c.listFeatureViews()).map((v) => v.name)).toContain("typed");
    expect(() => new LarderClient({ url: "" })).toThrow(/url/);
  });
});
