import { Writable } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyCache } from "../src/auth/keys.ts";
import { ErrorBody } from "../src/http/errors.ts";
import { createLogger } from "../src/logger.ts";
import { createTestContext, exampleDefinitions, type TestContext } from "./support/app.ts";
import { runCli } from "./support/process.ts";
import { TEST_REDIS_URL } from "./support/redis.ts";

// Everything logged by the app under test, one JSON line each.
const logLines: string[] = [];
const logSink = new Writable({
  write(chunk, _enc, cb) {
    logLines.push(...String(chunk).split("\n").filter(Boolean));
    cb();
  },
});

let t: TestContext;
const key: Record<string, string> = {};
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

beforeAll(async () => {
  t = await createTestContext({
    applyExampleTo: "demo",
    defaultProject: "demo",
    auth: true,
    logger: createLogger("info", logSink),
  });
  const store = t.keys!.store;
  key.read = (await store.create({ scope: "read", name: "reader" })).key;
  key.write = (await store.create({ scope: "write" })).key;
  key.admin = (await store.create({ scope: "admin" })).key;
  key.readDemo = (await store.create({ scope: "read", project: "demo" })).key;
  key.adminOther = (await store.create({ scope: "admin", project: "other" })).key;
});
afterAll(async () => t?.close());

const LOOKUP = { features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: [1001] } };
const PUSH = {
  push_source_name: "driver_stats_push",
  df: { driver_id: [1001], event_timestamp: ["2026-01-01T00:00:00Z"], conv_rate: [0.5], acc_rate: [0.9] },
};
const HISTORICAL = {
  entity_df: { driver_id: [1001], event_timestamp: ["2021-04-12T10:59:42Z"] },
  features: ["driver_hourly_stats:conv_rate"],
};

/** Requests by the scope they need (auth decides before routing, so these hold whatever the route then answers). */
const READS: [string, string, unknown?][] = [
  ["GET", "/v1/projects/demo/feature-views"],
  ["GET", "/v1/projects/demo/entities/driver"],
  ["GET", "/v1/projects/demo/materialization-jobs"],
  ["POST", "/get-online-features", LOOKUP],
  ["POST", "/v1/projects/demo/online-features", LOOKUP],
  ["POST", "/v1/projects/demo/historical-features", HISTORICAL],
];
const WRITES: [string, string, unknown?][] = [
  ["POST", "/push", PUSH],
  ["POST", "/v1/projects/demo/push", PUSH],
  ["POST", "/write-to-online-store", { feature_view_name: "driver_hourly_stats", df: {} }],
  ["POST", "/materialize", { start_ts: "2021-01-01T00:00:00Z", end_ts: "2021-01-02T00:00:00Z" }],
  ["POST", "/v1/projects/demo/materialize-incremental", { end_ts: "2021-01-02T00:00:00Z" }],
];
const ADMINS: [string, string, unknown?][] = [
  ["POST", "/v1/projects/demo/plan", {}],
  ["POST", "/v1/projects/demo/apply", "__example__"],
];

async function body(b: unknown) {
  return b === "__example__" ? exampleDefinitions() : b;
}

function expectError(res: { status: number; body: unknown }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  const parsed = ErrorBody.parse(res.body);
  expect(parsed.error.code).toBe(code);
}

describe("without a usable key", () => {
  it("answers 401 with the JSON error shape and a WWW-Authenticate challenge", async () => {
    const res = await t.app.request("/v1/projects/demo/feature-views");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(ErrorBody.parse(await res.json()).error.message).toMatch(/API key is required/);
  });

  it.each([
    ["a non-Bearer scheme", "Basic dXNlcjpwYXNz"],
    ["an empty bearer", "Bearer "],
    ["a key of the wrong shape", "Bearer not-a-key"],
    ["a well-shaped unknown key", `Bearer lk_0123456789abcdef_${"0".repeat(64)}`],
  ])("refuses %s with 401", async (_what, header) => {
    expectError(
      await t.call("POST", "/get-online-features", LOOKUP, { authorization: header }),
      401,
      "unauthenticated",
    );
  });

  it("refuses a known id with the wrong secret", async () => {
    const [, id] = key.read!.split("_");
    const forged = `lk_${id}_${"a".repeat(64)}`;
    expectError(await t.call("GET", "/v1/projects/demo/entities", undefined, bearer(forged)), 401, "unauthenticated");
  });

  it("leaves health, liveness, the OpenAPI document, the docs page and metrics open", async () => {
    for (const path of ["/health", "/health/live", "/openapi.json", "/docs", "/metrics"]) {
      const res = await t.app.request(path);
      expect(res.status, path).toBe(200);
    }
  });
});

describe("scopes", () => {
  const allowed = async (k: string, [method, path, b]: [string, string, unknown?]) => {
    const res = await t.call(method, path, await body(b), bearer(k));
    expect([401, 403], `${method} ${path}: ${JSON.stringify(res.body)}`).not.toContain(res.status);
    return res;
  };
  const refused = async (k: string, [method, path, b]: [string, string, unknown?]) => {
    const res = await t.call(method, path, await body(b), bearer(k));
    expectError(res, 403, "permission_denied");
    return res;
  };

  it("read: lookups and registry reads, nothing that writes", async () => {
    for (const r of READS) await allowed(key.read!, r);
    for (const r of [...WRITES, ...ADMINS]) await refused(key.read!, r);
    const views = await t.call("GET", "/v1/projects/demo/feature-views", undefined, bearer(key.read!));
    expect(views.status).toBe(200);
    expect(views.body.feature_views.length).toBe(3);
  });

  it("names the scope needed in the 403", async () => {
    const res = await refused(key.read!, ["POST", "/push", PUSH]);
    expect(res.body.error.message).toMatch(/scope read.*needs write/);
  });

  it("write: push, write, materialise, and reads; not plan or apply", async () => {
    for (const r of [...READS, ...WRITES]) await allowed(key.write!, r);
    for (const r of ADMINS) await refused(key.write!, r);
  });

  it("admin: everything, plan and apply included", async () => {
    for (const r of [...READS, ...WRITES]) await allowed(key.admin!, r);
    const plan = await t.call("POST", "/v1/projects/demo/plan", await exampleDefinitions(), bearer(key.admin!));
    expect(plan.status).toBe(200);
    expect(plan.body.summary.unchanged).toBeGreaterThan(0);
    const apply = await t.call("POST", "/v1/projects/demo/apply", await exampleDefinitions(), bearer(key.admin!));
    expect(apply.status).toBe(200);
  });

  it("a project key works on its project only; root endpoints count as the server's default project", async () => {
    await allowed(key.readDemo!, ["GET", "/v1/projects/demo/feature-views"]);
    await allowed(key.readDemo!, ["POST", "/get-online-features", LOOKUP]); // default project is demo here
    const other = await refused(key.readDemo!, ["GET", "/v1/projects/other/feature-views"]);
    expect(other.body.error.message).toMatch(/limited to project demo/);
    await refused(key.readDemo!, ["GET", "/v1/projects"]);
    // an admin key of another project cannot touch demo, root endpoints included
    await refused(key.adminOther!, ["POST", "/get-online-features", LOOKUP]);
    await refused(key.adminOther!, ["POST", "/v1/projects/demo/apply", "__example__"]);
    await allowed(key.adminOther!, ["POST", "/v1/projects/other/plan", {}]);
  });

  it("decides on the path the router sees (percent-encoding does not smuggle a project)", async () => {
    await refused(key.readDemo!, ["GET", "/v1/projects/%6Fther/feature-views"]);
    const res = await t.call("GET", "/v1/projects/d%65mo/feature-views", undefined, bearer(key.readDemo!));
    expect(res.status).toBe(200);
  });
});

describe("revocation", () => {
  it("a revoked key is refused, at once in this process", async () => {
    const { store, cache } = t.keys!;
    const k = await store.create({ scope: "read" });
    expect((await t.call("GET", "/v1/projects/demo/entities", undefined, bearer(k.key))).status).toBe(200);
    await store.revoke(k.info.id);
    await cache.poll();
    expectError(await t.call("GET", "/v1/projects/demo/entities", undefined, bearer(k.key)), 401, "unauthenticated");
  });

  it("a key verified once still lets no near miss through (the verified-key memo matches whole keys only)", async () => {
    const { store, cache } = t.keys!;
    const k = await store.create({ scope: "read" });
    expect((await cache.verify(k.key))?.keyId).toBe(k.info.id);
    expect((await cache.verify(k.key))?.keyId).toBe(k.info.id);
    const last = k.key.at(-1) === "0" ? "1" : "0";
    expect(await cache.verify(k.key.slice(0, -1) + last)).toBeNull();
    expect(await cache.verify(`${k.key} `)).toBeNull();
    expect(await cache.verify(k.key.toUpperCase())).toBeNull();
  });

  it("a key made just after the cache read the table works at once (it waits for the next read, not a 401)", async () => {
    const { store } = t.keys!;
    const cache = new KeyCache({ store, pepper: "test-pepper-0123456789", pollMs: 60_000, missRefreshMs: 500 });
    await cache.refresh();
    const k = await store.create({ scope: "read" });
    const started = Date.now();
    expect((await cache.verify(k.key))?.keyId).toBe(k.info.id);
    expect(Date.now() - started).toBeLessThan(2000);
    // a key that does not exist is still refused, and the rate of reads it causes stays bounded
    expect(await cache.verify(`lk_${"0".repeat(16)}_${"0".repeat(64)}`)).toBeNull();
  });

  it("keys made and revoked by the CLI, another process, take effect within the poll interval", async () => {
    const { cache } = t.keys!;
    cache.start();
    try {
      const env = {
        DATABASE_URL: t.db.url,
        REDIS_URL: TEST_REDIS_URL,
        LARDER_REDIS_PREFIX: t.prefix,
        LARDER_API_KEY_PEPPER: "test-pepper-0123456789",
      };
      const made = await runCli(["keys", "create", "--scope", "write", "--name", "from-cli"], env);
      expect(made.code, made.stderr).toBe(0);
      const cliKey = made.stdout.trim();
      expect(cliKey).toMatch(/^lk_[0-9a-f]{16}_[0-9a-f]{64}$/);
      expect(made.stderr).toMatch(/not shown again/);
      // an unknown id makes the cache look again at once: a new key works straight away
      expect((await t.call("GET", "/v1/projects/demo/entities", undefined, bearer(cliKey))).status).toBe(200);

      const listed = await runCli(["keys", "list", "--json"], env);
      const rows = JSON.parse(listed.stdout) as { id: string; name: string | null }[];
      const id = cliKey.split("_")[1]!;
      expect(rows.find((r) => r.id === id)?.name).toBe("from-cli");
      expect(listed.stdout).not.toContain(cliKey.split("_")[2]);

      const revoked = await runCli(["keys", "revoke", id], env);
      expect(revoked.code, revoked.stderr).toBe(0);
      let status = 0;
      for (let i = 0; i < 50 && status !== 401; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await t.call("GET", "/v1/projects/demo/entities", undefined, bearer(cliKey))).status;
      }
      expect(status).toBe(401);
    } finally {
      cache.stop();
    }
  });

  it("the CLI explains bad input in one line and exits non-zero", async () => {
    const env = { DATABASE_URL: t.db.url, REDIS_URL: TEST_REDIS_URL, LARDER_REDIS_PREFIX: t.prefix };
    const bad = await runCli(["keys", "create", "--scope", "root"], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/read, write, admin/);
    const unknown = await runCli(["keys", "revoke", "0000000000000000"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no API key with id/);
    const help = await runCli(["keys", "create", "--help"], env);
    expect(help.stdout).toMatch(/--scope/);
  });
});

describe("secrecy", () => {
  it("stores only an HMAC of each key: no secret in clear in the database", async () => {
    const client = new pg.Client({ connectionString: t.db.url });
    await client.connect();
    try {
      const { rows } = await client.query("select * from larder.api_keys");
      expect(rows.length).toBeGreaterThanOrEqual(5);
      const dump = JSON.stringify(rows);
      for (const k of Object.values(key)) {
        const secret = k.split("_")[2]!;
        expect(dump).not.toContain(secret);
        expect(dump).not.toContain(k);
      }
      for (const r of rows) expect(r.secret_hash).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    } finally {
      await client.end();
    }
  });

  it("logs one info line per request — method, route, status, duration, request id — and never a key", async () => {
    logLines.length = 0;
    await t.call("GET", "/v1/projects/demo/feature-views", undefined, bearer(key.read!));
    await t.call("POST", "/push", PUSH, bearer(key.read!));
    await t.call("GET", "/v1/projects/demo/entities", undefined, {
      authorization: `Bearer ${key.admin!.slice(0, -1)}x`,
    });
    const requests = logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
    expect(requests).toHaveLength(3);
    expect(requests[0]).toMatchObject({
      level: 30,
      method: "GET",
      route: "/v1/projects/:project/feature-views",
      status: 200,
      request_id: expect.any(String),
      duration_ms: expect.any(Number),
    });
    expect(requests.map((r) => r.status)).toEqual([200, 403, 401]);
    const all = logLines.join("\n");
    for (const k of Object.values(key)) expect(all).not.toContain(k.split("_")[2]!);
    expect(all.toLowerCase()).not.toContain("bearer");
  });
});

describe("over a real socket (headers as Node parses them)", () => {
  /** One raw HTTP/1.1 request with exactly these header lines; the status and body of the answer. */
  async function raw(port: number, path: string, headerLines: string[], body: string) {
    const net = await import("node:net");
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.write(
          [
            `POST ${path} HTTP/1.1`,
            "Host: x",
            "Connection: close",
            ...headerLines,
            `Content-Length: ${Buffer.byteLength(body)}`,
            "",
            body,
          ].join("\r\n"),
        );
      });
      let text = "";
      socket.on("data", (d) => (text += d));
      socket.on("error", reject);
      socket.on("end", () => {
        const [head, ...rest] = text.split("\r\n\r\n");
        resolve({ status: Number(head!.split(" ")[1]), body: rest.join("\r\n\r\n") });
      });
    });
  }

  it("a repeated Authorization header is refused, whichever copy holds a good key; repeated content-types are one label", async () => {
    const { serve } = await import("@hono/node-server");
    const server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((r) => server.once("listening", r));
    const port = (server.address() as { port: number }).port;
    try {
      const lookup = JSON.stringify(LOOKUP);
      const json = "Content-Type: application/json";
      expect(
        (await raw(port, "/get-online-features", [`Authorization: Bearer ${key.read}`, json], lookup)).status,
      ).toBe(200);
      for (const pair of [
        [`Bearer ${key.read}`, "Bearer junk"],
        ["Bearer junk", `Bearer ${key.read}`],
        [`Bearer ${key.write}`, `Bearer ${key.read}`],
      ]) {
        const res = await raw(port, "/get-online-features", [...pair.map((v) => `Authorization: ${v}`), json], lookup);
        expect(res.status, pair.join(" + ")).toBe(401);
        expect(JSON.parse(res.body).error.code).toBe("unauthenticated");
      }
      // two labels are read as one (joined, as web Headers give them): the body is still read as JSON
      const twice = await raw(
        port,
        "/push",
        [`Authorization: Bearer ${key.write}`, json, "Content-Type: text/plain"],
        JSON.stringify({ ...PUSH, push_source_name: "no_such_source" }),
      );
      expect(twice.status, twice.body).toBe(400); // read and judged as a push: not a 415
      expect(JSON.parse(twice.body).error.message).toMatch(/no_such_source/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
