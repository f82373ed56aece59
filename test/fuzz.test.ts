/**
 * Fuzz: thousands of random and malformed requests to every endpoint (those of the OpenAPI document, plus the
 * Feast-compatible ones). None may answer 5xx or take longer than a bound, every non-2xx answer must be the contract's
 * JSON error shape, and a request that fails must write nothing (online store, batch tables, registry, jobs).
 *
 * The cases come from a seeded PRNG: a failure prints the seed, the case number and the body, and
 * `LARDER_FUZZ_SEED=<seed> npx vitest run test/fuzz.test.ts` replays the same cases.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody } from "../src/http/errors.ts";
import { applyOnlineFixtures, iso } from "./online-fixtures.ts";
import { createTestContext, exampleDefinitions, type TestContext } from "./support/app.ts";

const SEED = Number(process.env.LARDER_FUZZ_SEED ?? 20261126) >>> 0;
/** An answer slower than this is a hang. Real answers take milliseconds; the bound leaves room for a noisy machine. */
const BOUND_MS = 5_000;
const MIN_CASES = 2_000;

// ---- a seeded PRNG (mulberry32) ----

class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---- JSON text with what JSON.stringify cannot write ----

/** A JSON fragment written as is: `1e400`, `-0`, a 10,000-level nesting. */
class Raw {
  constructor(readonly text: string) {}
}
/** An object with repeated keys. */
class Dup {
  constructor(readonly entries: [string, unknown][]) {}
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  const obj = (entries: [string, unknown][]) =>
    `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(",")}}`;
  if (v instanceof Dup) return obj(v.entries);
  if (Array.isArray(v)) return `[${v.map(toJson).join(",")}]`;
  if (v !== null && typeof v === "object") return obj(Object.entries(v));
  if (v === undefined) return "null";
  return JSON.stringify(v);
}

const deepArray = (n: number) => new Raw("[".repeat(n) + "]".repeat(n));
const deepObject = (n: number) => new Raw(`${'{"a":'.repeat(n)}1${"}".repeat(n)}`);

// ---- values ----

const EDGE_NUMBERS = [
  0,
  1,
  -1,
  1.5,
  -2.5,
  0.1,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53) - 2,
  2 ** 63,
  2 ** 64,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_SAFE_INTEGER,
  1e21,
  1e-7,
  86_400,
  4_102_444_800,
];
const EDGE_RAW = [
  "1e400",
  "-1e400",
  "-0",
  "-0.0",
  "1E-400",
  "123456789012345678901234567890",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775809",
  "0.00000000000000000000000000001",
  "1.0",
  "1e2",
  "-0e0",
  `1${"0".repeat(400)}`,
];
const EDGE_STRINGS = [
  "",
  " ",
  "NaN",
  "nan",
  "-NaN",
  "Infinity",
  "-Infinity",
  "inf",
  "1e400",
  "-0",
  "0x10",
  "1_000",
  " 42 ",
  "42.0",
  "4.2e1",
  "true",
  "False",
  "null",
  "undefined",
  "[1,2]",
  "[",
  "{}",
  "2024-13-45T99:99:99Z",
  "2024-02-30T00:00:00Z",
  "2026-01-01T00:00:00Z",
  "2024-10-25 16:21:37.123456+00:00",
  "9999-12-31T23:59:59.999999999Z",
  "0000-01-01T00:00:00Z",
  "0050-06-01T00:00:00Z",
  "+275760-09-13T00:00:00Z",
  "2024-01-01T00:00:00+99:99",
  "2024-01-01T00:00:00-23:59",
  "2024-01-01",
  "\u0000",
  "\ud800",
  "\udfff\ud800",
  "名前",
  "🙂",
  "é",
  "a\u0301",
  "\u202e",
  "'; DROP TABLE x;--",
  "../../etc/passwd",
  "%00",
  "%ZZ",
  "AAAA",
  "====",
  "/w==",
  "driver_hourly_stats:conv_rate",
  "driver_hourly_stats:",
  ":conv_rate",
  "a:b:c",
  "driver_hourly_stats__conv_rate",
  "typed:doc",
  "driver_activity",
  "driver_stats_push",
  "typed",
  "driver_id",
  "event_timestamp",
  "__proto__",
  "constructor",
  "online",
  "offline",
];
const ODD_KEYS = [
  "extra",
  "名前",
  "🙂",
  "",
  " ",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "driver_id",
  "event_timestamp",
  "created",
  "$where",
  "a.b",
  "a:b",
  "\u0000",
  "\ud800",
  "features",
  "entities",
  "df",
  "to",
  "a".repeat(10_000),
];
/** Path parameters with odd characters (raw in the path, so malformed percent-escapes too). */
const ODD_PARAMS = [
  "",
  "%20",
  "a%20b",
  "..",
  "%2E%2E",
  "..%2F..%2Fetc",
  "%00",
  "%ZZ",
  "%",
  "%E2%82",
  "%C0%AF",
  "%FF",
  "名前",
  "%F0%9F%99%82",
  "1abc",
  "_",
  "x".repeat(10_000),
  "demo%2Fx",
  "demo;x",
  "'%3B--",
  "demo.x",
  "DEMO",
  "demo%0A",
  "a+b",
  "~",
  "@",
  "demo%09",
  "-1",
  "0",
  "true",
  "null",
  "__proto__",
  "constructor",
];

function randString(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return rng.pick(EDGE_STRINGS);
    case 1: {
      // random code points, surrogates and controls included
      let s = "";
      const n = rng.int(20);
      for (let i = 0; i < n; i++) s += String.fromCharCode(rng.chance(0.5) ? rng.int(128) : rng.int(0x10000));
      return s;
    }
    case 2:
      return "x".repeat(1 + rng.int(rng.chance(0.1) ? 200_000 : 300));
    case 3:
      return String(rng.pick(EDGE_NUMBERS));
    default:
      return `s${rng.int(1000)}`;
  }
}

function randNumber(rng: Rng): unknown {
  switch (rng.int(4)) {
    case 0:
      return new Raw(rng.pick(EDGE_RAW));
    case 1:
      return (rng.next() - 0.5) * 10 ** rng.int(30);
    case 2:
      return rng.int(1000); // never an example entity (1001..1050)
    default:
      return rng.pick(EDGE_NUMBERS);
  }
}

function randValue(rng: Rng, depth = 2): unknown {
  const k = rng.int(depth > 0 ? 10 : 7);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
    case 3:
      return randNumber(rng);
    case 4:
    case 5:
      return randString(rng);
    case 6:
      return rng.chance(0.5) ? [] : {};
    case 7:
      return Array.from({ length: rng.int(5) }, () => randValue(rng, depth - 1));
    case 8: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--)
        o[rng.chance(0.5) ? rng.pick(ODD_KEYS) : randString(rng)] = randValue(rng, depth - 1);
      return o;
    }
    default:
      return new Dup([
        ["a", randValue(rng, depth - 1)],
        ["a", randValue(rng, depth - 1)],
      ]);
  }
}

// ---- mutations of valid bodies ----

type Path = (string | number)[];

function nodePaths(v: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(v))
    v.forEach((x, i) => {
      nodePaths(x, [...prefix, i], out);
    });
  else if (v !== null && typeof v === "object" && !(v instanceof Raw) && !(v instanceof Dup))
    for (const [k, x] of Object.entries(v)) nodePaths(x, [...prefix, k], out);
  return out;
}

function getAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const p of path) v = (v as Record<string | number, unknown>)[p];
  return v;
}

function setAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  (getAt(root, path.slice(0, -1)) as Record<string | number, unknown>)[path.at(-1)!] = value;
  return root;
}

function edgeLike(rng: Rng, v: unknown): unknown {
  if (typeof v === "number") return rng.chance(0.5) ? new Raw(rng.pick(EDGE_RAW)) : rng.pick(EDGE_NUMBERS);
  if (typeof v === "string") return rng.chance(0.7) ? rng.pick(EDGE_STRINGS) : randString(rng);
  if (typeof v === "boolean") return rng.pick(["true", 1, 0, "yes", null, !v]);
  return randValue(rng, 1);
}

function mutate(rng: Rng, base: unknown): unknown {
  let body = structuredClone(base);
  let huge = false;
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const all = nodePaths(body);
    // deeper nodes are where validation is deep: prefer them
    const path = rng.chance(0.8) && all.length > 1 ? rng.pick(all.slice(1)) : rng.pick(all);
    const node = getAt(body, path);
    const parentPath = path.slice(0, -1);
    const parent = path.length ? getAt(body, parentPath) : undefined;
    switch (rng.int(10)) {
      case 0:
        body = setAt(body, path, randValue(rng, 2));
        break;
      case 1: // a missing field or element
        if (parent && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[path.at(-1) as string];
        else if (Array.isArray(parent)) parent.splice(path.at(-1) as number, 1);
        break;
      case 2: // an extra field
        if (node !== null && typeof node === "object" && !Array.isArray(node))
          (node as Record<string, unknown>)[rng.pick(ODD_KEYS)] = randValue(rng, 1);
        else if (Array.isArray(node)) node.push(randValue(rng, 1));
        else body = setAt(body, path, { value: node });
        break;
      case 3: // arrays of other lengths
        if (Array.isArray(node)) {
          const r = rng.int(4);
          if (r === 0) node.length = 0;
          else if (r === 1 && node.length < 1000) node.push(...node);
          else if (r === 2) node.pop();
          else node.push(node[0] ?? null);
        } else body = setAt(body, path, [node]);
        break;
      case 4:
      case 5:
        body = setAt(body, path, edgeLike(rng, node));
        break;
      case 6:
        body = setAt(body, path, null);
        break;
      case 7: // a renamed key
        if (parent && !Array.isArray(parent)) {
          const p = parent as Record<string, unknown>;
          const k = path.at(-1) as string;
          const v = p[k];
          delete p[k];
          p[rng.chance(0.5) ? rng.pick(ODD_KEYS) : `${k}_x`] = v;
        }
        break;
      case 8: {
        // a huge array (of a small value) or string in place of a value; once per body, so bodies stay below the limit
        if (huge) break;
        huge = true;
        const small = node === null || typeof node === "number" || typeof node === "boolean" ? node : 1;
        body = setAt(
          body,
          path,
          rng.chance(0.5) ? Array.from({ length: 20_000 + rng.int(80_000) }, () => small) : "z".repeat(1_000_000),
        );
        break;
      }
      default: // deep nesting
        if (huge) break;
        huge = true;
        body = setAt(body, path, rng.chance(0.5) ? deepArray(10_000) : deepObject(10_000));
    }
  }
  return body;
}

// ---- the app and its data ----

let t: TestContext;
let client: pg.Client;
const NOW = Math.floor(Date.now() / 1000) * 1000;
const TS1 = iso(NOW - 600_000);
const TS2 = iso(NOW - 300_000);
const APPLY_PROJECT = "fuzz_apply";

const typedFrame = () => ({
  driver_id: [7001, "7002"],
  event_timestamp: [TS1, "2024-10-25 16:21:37.123456+00:00"],
  created: [TS1, null],
  i32: [1, "2"],
  i64: ["9007199254740993", 4],
  f32: [0.5, "1.5"],
  f64: [2.25, -1e10],
  s: ["hello", "名前"],
  b: ["aGVsbG8=", ""],
  flag: [true, "False"],
  ts: [1_700_000_000, TS2],
  doc: [{ a: [1, { b: null }] }, "text"],
  fl: [[0.5, null], "[1.5]"],
  sl: [["a", "b"], []],
  il: [[1, "9007199254740993"], null],
});

/** Valid bodies per endpoint (by OpenAPI path, method POST), the seeds of the mutations. */
function validBodies(defs: unknown): Record<string, unknown[]> {
  const online = [
    {
      features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips", "typed:doc", "typed:fl"],
      entities: { driver_id: [1001, 7001, "1002"] },
      full_feature_names: false,
    },
    { feature_service: "driver_and_customer", entities: { driver_id: [1002], customer_id: ["C100"] } },
    {
      features: ["trips:trips", "trips:rating", "customer_profile:current_balance"],
      entities: { driver_id: [1001, 7002], customer_id: ["C100", "C101"] },
      full_feature_names: true,
      allow_registry_cache: true,
    },
  ];
  const push = [
    { push_source_name: "typed_push", df: typedFrame(), to: "online" },
    { push_source_name: "typed_push", df: typedFrame(), to: "online_and_offline" },
    {
      push_source_name: "driver_stats_push",
      df: { driver_id: [7001], event_timestamp: [TS1], created: [TS1], conv_rate: [0.5], acc_rate: ["0.25"] },
      to: "offline",
    },
  ];
  const write = [
    { feature_view_name: "typed", df: typedFrame() },
    {
      feature_view_name: "driver_hourly_stats",
      df: {
        driver_id: [7001, 7002],
        event_timestamp: [TS1, TS2],
        conv_rate: [0.1, 0.2],
        acc_rate: [0.3, 0.4],
        avg_daily_trips: [5, "6"],
      },
    },
    {
      feature_view_name: "trips",
      df: { driver_id: [7001], customer_id: ["C7"], event_timestamp: [TS2], trips: [3], rating: [4.5] },
    },
  ];
  const materialize = [
    { start_ts: iso(NOW - 2 * 86_400_000), end_ts: iso(NOW), feature_views: ["driver_hourly_stats"] },
    { start_ts: iso(NOW - 86_400_000), end_ts: NOW / 1000, feature_views: ["customer_profile", "typed"] },
  ];
  const incremental = [{ end_ts: iso(NOW), feature_views: ["driver_hourly_stats", "trips"] }, { end_ts: iso(NOW) }];
  const historical = [
    {
      entity_df: {
        driver_id: [1001, 1002, 7001],
        customer_id: ["C100", "C101", "C7"],
        event_timestamp: [iso(NOW - 3_600_000), "2024-10-25 16:21:37", TS1],
      },
      features: ["driver_hourly_stats:conv_rate", "trips:rating", "customer_profile:current_balance"],
      full_feature_names: true,
    },
    {
      entity_df: { driver_id: [1001], customer_id: ["C100"], event_timestamp: [iso(NOW)] },
      feature_service: "driver_and_customer",
    },
  ];
  return {
    "/get-online-features": online,
    "/v1/projects/{project}/online-features": online,
    "/push": push,
    "/v1/projects/{project}/push": push,
    "/write-to-online-store": write,
    "/v1/projects/{project}/write-to-online-store": write,
    "/materialize": materialize,
    "/v1/projects/{project}/materialize": materialize,
    "/materialize-incremental": incremental,
    "/v1/projects/{project}/materialize-incremental": incremental,
    "/v1/projects/{project}/historical-features": historical,
    "/v1/projects/{project}/plan": [defs],
    "/v1/projects/{project}/apply": [defs],
  };
}

/** Names that exist, per collection path, so the `/{name}` routes get past the lookup. */
const NAMES: Record<string, string[]> = {
  entities: ["driver", "customer"],
  "data-sources": ["driver_stats_source", "driver_stats_push", "typed_push"],
  "feature-views": ["driver_hourly_stats", "typed", "trips"],
  "feature-services": ["driver_activity", "typed_service"],
};

/** Cells that no dtype accepts, per kind of column: the bad row of a frame whose good row must not be written. */
const BAD_CELLS: Record<string, unknown[]> = {
  key: ["abc", 1.5, new Raw("1e400"), "9223372036854775808", null, true, [], {}, "", "1e400", 2 ** 53 + 2],
  timestamp: ["yesterday", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", null, true, {}, [], "", new Raw("1e400")],
  float: ["abc", "NaN", "Infinity", "-inf", new Raw("1e400"), true, {}, [], "1,5", ""],
  int: [1.5, "x", new Raw("1e400"), 2 ** 53 + 2, "9223372036854775808", true, {}, "1.5"],
};

// ---- sending ----

interface FuzzCase {
  label: string;
  method: string;
  path: string;
  contentType?: string | null;
  body?: string | Uint8Array;
  /** Set on cases that must be refused (a bad cell in a frame). */
  mustFail?: boolean;
  headers?: Record<string, string>;
}

interface Answer {
  status: number;
  text: string;
  contentType: string | null;
  ms: number;
}

async function send(app: TestContext["app"], c: FuzzCase): Promise<Answer | "timeout"> {
  const headers: Record<string, string> = { ...c.headers };
  if (c.contentType !== null) headers["content-type"] = c.contentType ?? "application/json";
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), BOUND_MS);
  });
  const work = (async () => {
    const res = await app.request(c.path, { method: c.method, headers, body: c.body });
    const text = await res.text();
    return { status: res.status, text, contentType: res.headers.get("content-type"), ms: performance.now() - started };
  })();
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What is wrong with an answer, if anything: a 5xx, or a non-2xx answer that is not the contract's JSON error. */
function answerProblem(a: Answer): string | undefined {
  if (a.status >= 500) return `answered ${a.status}: ${a.text.slice(0, 300)}`;
  if (a.status >= 200 && a.status < 300) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(a.text);
  } catch {
    return `answered ${a.status} with a body that is not JSON: ${a.text.slice(0, 200)}`;
  }
  if (!ErrorBody.safeParse(parsed).success)
    return `answered ${a.status} without the error shape: ${a.text.slice(0, 300)}`;
  if (!a.contentType?.includes("application/json")) return `answered ${a.status} with content-type ${a.contentType}`;
  return undefined;
}

function preview(c: FuzzCase): string {
  const head =
    c.body === undefined
      ? "(no body)"
      : typeof c.body === "string"
        ? JSON.stringify(c.body.length > 400 ? `${c.body.slice(0, 400)}… (${c.body.length} chars)` : c.body)
        : `bytes ${Buffer.from(c.body.subarray(0, 200)).toString("hex")}${c.body.length > 200 ? `… (${c.body.length} bytes)` : ""}`;
  const path = c.path.length > 200 ? `${c.path.slice(0, 200)}… (${c.path.length} chars)` : c.path;
  return `${c.method} ${path} [${c.label}] content-type=${c.contentType === undefined ? "application/json" : c.contentType} body=${head}`;
}

// ---- the state that a failed request must leave alone ----

/** One lookup of every online view for the example entities (rows 0 and 1) and the fuzz's own (rows 2 and 3). */
const TYPED = ["i32", "i64", "f32", "f64", "s", "b", "flag", "ts", "doc", "fl", "sl", "il"];
const LOOKUP = {
  features: [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
    "driver_hourly_stats_fresh:conv_rate",
    "driver_hourly_stats_fresh:acc_rate",
    ...TYPED.map((f) => `typed:${f}`),
    "trips:trips",
    "trips:rating",
    "customer_profile:current_balance",
    "customer_profile:lifetime_trip_count",
  ],
  entities: { driver_id: [1001, 1002, 7001, 7002], customer_id: ["C100", "C101", "C7", "C7"] },
  full_feature_names: true,
};

async function lookupState(): Promise<string> {
  const r = await t.call("POST", "/v1/projects/demo/online-features", LOOKUP);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return JSON.stringify(r.body);
}

/** What a failed request must not change: the online values, the batch tables, the jobs and the registry versions. */
async function storeState(): Promise<string> {
  const [online, counts] = await Promise.all([
    lookupState(),
    client.query(
      `SELECT (SELECT count(*) FROM public.driver_stats) AS driver_stats, (SELECT count(*) FROM public.typed) AS typed,
              (SELECT count(*) FROM public.trips) AS trips, (SELECT count(*) FROM larder.materialization_jobs) AS jobs,
              (SELECT string_agg(name || '@' || registry_version, ',' ORDER BY name) FROM larder.projects) AS registry`,
    ),
  ]);
  return `${online}\n${JSON.stringify(counts.rows[0])}`;
}

/** Messages of refusals made before a route's handler runs (src/http/app.ts, errors.ts, json-depth.ts). */
const BEFORE_HANDLER =
  /^\{"error":\{"code":"invalid_argument","message":"(invalid (body|param|query):|malformed JSON|Malformed JSON|the JSON body nests)/;

// ---- the cases ----

interface Endpoint {
  method: string;
  path: string;
}

const isWrite = (e: Endpoint) =>
  e.method === "POST" && /\/(push|write-to-online-store|materialize|materialize-incremental|apply)$/.test(e.path);

function fill(path: string, params: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => params[name] ?? "x");
}

function goodParams(rng: Rng, e: Endpoint): Record<string, string> {
  const collection = /\/v1\/projects\/\{project\}\/([a-z-]+)\/\{name\}/.exec(e.path)?.[1];
  return {
    project: e.path.endsWith("/apply") ? APPLY_PROJECT : "demo",
    name: collection ? rng.pick(NAMES[collection] ?? ["x"]) : "x",
    id: "00000000-0000-4000-8000-000000000000",
  };
}

const _bytes = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));

function withInvalidUtf8(rng: Rng, text: string): Uint8Array {
  const b = Buffer.from(text, "utf8");
  // inside a string when there is one, so the bytes reach the values
  const quotes = [...text.matchAll(/"[A-Za-z0-9_]/g)].map((m) => m.index!);
  const at = quotes.length ? Buffer.byteLength(text.slice(0, rng.pick(quotes) + 1)) : rng.int(b.length + 1);
  const junk = rng.pick([
    [0xff],
    [0xfe, 0xff],
    [0xc0, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0x80],
    [0xe2, 0x82],
  ]);
  return new Uint8Array(Buffer.concat([b.subarray(0, at), Buffer.from(junk), b.subarray(at)]));
}

/** A frame of two rows: the first valid and newer than what the online store holds for example entities, the second bad in one cell. */
function halfWriteCase(rng: Rng, e: Endpoint, path: string): FuzzCase {
  const now = iso(Date.now());
  const viaPush = e.path.endsWith("/push");
  const kind = rng.pick(["key", "timestamp", "float", "int", "length", "unknown", "missing"] as const);
  const df: Record<string, unknown[]> = viaPush
    ? { driver_id: [1001, 1002], event_timestamp: [now, now], conv_rate: [0.987, 0.5], acc_rate: [0.876, 0.5] }
    : {
        driver_id: [1001, 1002],
        event_timestamp: [now, now],
        conv_rate: [0.987, 0.5],
        acc_rate: [0.876, 0.5],
        avg_daily_trips: [999_999, 7],
      };
  const label = `half-write: bad ${kind}`;
  switch (kind) {
    case "key":
      df.driver_id![1] = rng.pick(BAD_CELLS.key!);
      break;
    case "timestamp":
      df.event_timestamp![1] = rng.pick(BAD_CELLS.timestamp!);
      break;
    case "float":
      df[rng.pick(["conv_rate", "acc_rate"])]![1] = rng.pick(BAD_CELLS.float!);
      break;
    case "int":
      if (viaPush) df.created = [now, rng.pick(BAD_CELLS.timestamp!.filter((x) => x !== null))];
      else df.avg_daily_trips![1] = rng.pick(BAD_CELLS.int!);
      break;
    case "length":
      df.acc_rate!.push(0.1);
      break;
    case "unknown":
      df[rng.pick(["speed", "名前", "driver_id ", "Conv_rate"])] = [1, 2];
      break;
    case "missing":
      delete df[rng.pick(["driver_id", "event_timestamp", "acc_rate"])];
      break;
  }
  const body = viaPush
    ? { push_source_name: "driver_stats_push", df, to: rng.pick(["online", "offline", "online_and_offline"]) }
    : { feature_view_name: "driver_hourly_stats", df };
  return { label, method: "POST", path, body: toJson(body), mustFail: true };
}

function* casesFor(rng: Rng, e: Endpoint, bases: Record<string, unknown[]>): Generator<FuzzCase> {
  const params = goodParams(rng, e);
  const good = fill(e.path, params);
  const basesHere = bases[e.path];
  const base = () => (basesHere ? structuredClone(rng.pick(basesHere)) : {});
  const validText = () => toJson(base());
  const isPost = e.method === "POST";
  const postBody = () => (isPost ? validText() : undefined);

  // path parameters with odd characters, and very long names
  for (const name of Object.keys(params).filter((p) => e.path.includes(`{${p}}`))) {
    for (let i = 0; i < 10; i++) {
      let odd = rng.pick(ODD_PARAMS);
      // never the project the fuzz reads back, so a valid body cannot apply to it
      if (name === "project" && odd.toLowerCase() === "demo") odd = "demo_x";
      yield {
        label: `odd {${name}}`,
        method: e.method,
        path: fill(e.path, { ...params, [name]: odd }),
        body: postBody(),
      };
    }
  }
  // query strings
  const queries = [
    "?async=maybe",
    "?async=",
    "?async=%ZZ",
    "?limit=abc",
    "?limit=1e400",
    "?limit=-1",
    "?limit=0",
    "?limit=99999999999999999999",
    "?feature_view=%00",
    "?a=%ZZ&&==&a=1&a=2",
    `?x=${"q".repeat(5000)}`,
    "?async=false&async=true",
  ];
  for (let i = 0; i < 4; i++)
    yield { label: "odd query", method: e.method, path: good + rng.pick(queries), body: postBody() };
  // the wrong method
  for (const method of isPost ? ["GET", "PUT", "DELETE", "PATCH"] : ["POST", "PUT", "DELETE", "OPTIONS"]) {
    const body = method === "GET" || method === "OPTIONS" ? undefined : toJson(randValue(rng, 2));
    yield { label: "wrong method", method, path: good, body };
  }
  if (!isPost) return;

  const post = (label: string, body: string | Uint8Array | undefined, contentType?: string | null): FuzzCase => ({
    label,
    method: "POST",
    path: good,
    body,
    contentType,
  });
  const valid = validText();
  const structural: FuzzCase[] = [
    post("no body", undefined),
    post("no body, no content-type", undefined, null),
    post("empty body", ""),
    post("whitespace", " \n\t "),
    ...["null", "true", "0", "-0", "1e400", '"str"', "[]", "[{}]", "{}", "[null]", '""'].map((b) =>
      post(`top-level ${b}`, b),
    ),
    post("truncated", valid.slice(0, rng.int(valid.length))),
    post("trailing garbage", `${valid}}`),
    post("two documents", `${valid} ${valid}`),
    post("single quotes", valid.replaceAll('"', "'")),
    post("js literal", "{a: 1}"),
    post("NaN", "NaN"),
    post("NaN value", '{"a": NaN, "b": undefined}'),
    post("comment", `/* c */ ${valid}`),
    post("BOM", `\ufeff${valid}`),
    post("NUL", "\u0000"),
    post("control characters in a string", valid.replace(/"([A-Za-z])/, '"\u0001\u001f$1')),
    post("lone surrogate escape", valid.replace(/"([A-Za-z_]+)"(?!:)/, '"\\ud800$1"')),
    post("invalid UTF-8 in the body", withInvalidUtf8(rng, valid)),
    post("invalid UTF-8 in the body", withInvalidUtf8(rng, valid)),
    post(
      "invalid UTF-8 only",
      new Uint8Array([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0xff, 0xfe]),
    ),
    post("UTF-16 body", new Uint8Array(Buffer.from(valid, "utf16le"))),
    post("random bytes", new Uint8Array(Array.from({ length: 64 }, () => rng.int(256)))),
    post("deep array 10k", deepArray(10_000).text),
    post("deep object 10k", deepObject(10_000).text),
    post("deep array 100k", deepArray(100_000).text),
    post("deep array, unclosed", "[".repeat(200_000)),
    post("huge string", JSON.stringify("y".repeat(3_000_000))),
    post("huge array", `[${"1,".repeat(500_000)}1]`),
    post("huge number", `1${"0".repeat(100_000)}`),
    post("over the body limit", `{"a":"${"b".repeat(10 * 1024 * 1024 + 10)}"}`),
    post("duplicated keys", toJson(dupKeys(rng, base()))),
    post("duplicated keys", toJson(dupKeys(rng, base()))),
    post("text/plain", valid, "text/plain"),
    post("form", "a=1&b=2", "application/x-www-form-urlencoded"),
    post(
      "multipart",
      '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
      "multipart/form-data; boundary=x",
    ),
    post("no content-type", valid, null),
    post("empty content-type", valid, ""),
    post("charset utf-16", valid, "application/json; charset=utf-16"),
    post(
      "odd content-type",
      valid,
      rng.pick([
        "APPLICATION/JSON",
        "application/json;;;",
        "application/vnd.api+json",
        "application/xml",
        'application/json; charset="',
        "*/*",
      ]),
    ),
  ];
  yield* structural;

  // random JSON at the top level, and objects with the right keys holding random values
  const keys = basesHere ? [...new Set(basesHere.flatMap((b) => Object.keys(b as object)))] : [];
  for (let i = 0; i < 35; i++) {
    if (i % 2 === 0 || keys.length === 0) yield post("random value", toJson(randValue(rng, 3)));
    else {
      const o: Record<string, unknown> = {};
      for (const k of keys)
        if (rng.chance(0.7)) o[k] = rng.chance(0.3) ? (base() as Record<string, unknown>)[k] : randValue(rng, 2);
      yield post("random values for the right keys", toJson(o));
    }
  }

  // mutations of valid bodies: past the first check, into deep validation
  if (basesHere) {
    yield post("valid", valid);
    for (let i = 0; i < 45; i++) yield post("mutation", toJson(mutate(rng, base())));
    // huge frames and entity lists with one bad value at the very end
    yield post("huge columns, last cell bad", toJson(hugeColumns(rng, base())));
  }
  if (/\/(push|write-to-online-store)$/.test(e.path)) for (let i = 0; i < 12; i++) yield halfWriteCase(rng, e, good);
}

/** The body with one of its objects written with a key twice, the first or the second holding garbage. */
function dupKeys(rng: Rng, body: unknown): unknown {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
  const entries = Object.entries(body);
  if (entries.length === 0)
    return new Dup([
      ["a", 1],
      ["a", 2],
    ]);
  const [k, _v] = rng.pick(entries);
  const garbage = randValue(rng, 1);
  return new Dup(rng.chance(0.5) ? [[k, garbage], ...entries] : [...entries, [k, garbage]]);
}

/** Every column of the body's frame (df, entities, entity_df) made 20,000 rows long, with a bad last cell. */
function hugeColumns(rng: Rng, body: unknown): unknown {
  const b = body as Record<string, unknown>;
  const frame = (b.df ?? b.entities ?? b.entity_df) as Record<string, unknown[]> | undefined;
  if (!frame) return { ...b, features: Array.from({ length: 50_000 }, (_, i) => `driver_hourly_stats:f${i}`) };
  const n = 20_000;
  for (const [k, col] of Object.entries(frame)) frame[k] = Array.from({ length: n }, (_, i) => col[i % col.length]);
  // an object fits no dtype but json (the column doc), so the frame is bad and the request must end quickly
  const cols = Object.keys(frame).filter((k) => k !== "doc");
  frame[rng.pick(cols)]![n - 1] = { bad: rng.pick([1, [], "x"]) };
  return b;
}

// ---- the test ----

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo" });
  await applyOnlineFixtures(t);
  await t.deps.registry.apply(APPLY_PROJECT, await exampleDefinitions());
  client = new pg.Client({ connectionString: t.db.url });
  await client.connect();
  // The example's values online, as a quickstart has them.
  const m = await t.call("POST", "/materialize", { start_ts: "1970-01-01T00:00:00Z", end_ts: iso(NOW + 3_600_000) });
  expect(m.status, JSON.stringify(m.body)).toBe(200);
}, 60_000);

afterAll(async () => {
  await client?.end();
  await t?.close();
});

describe("fuzz", () => {
  it("every endpoint answers every malformed body within a bound, never 5xx, with the JSON error shape, writing nothing when it fails", async () => {
    console.log(`fuzz seed ${SEED} (replay: LARDER_FUZZ_SEED=${SEED} npx vitest run test/fuzz.test.ts)`);
    const rng = new Rng(SEED);

    const doc = (await (await t.app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const endpoints: Endpoint[] = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })),
    );
    const listed = new Set(endpoints.map((e) => `${e.method} ${e.path}`));
    const required = [
      "POST /get-online-features",
      "POST /push",
      "POST /write-to-online-store",
      "POST /materialize",
      "POST /materialize-incremental",
      "GET /health",
      "GET /v1/projects",
      ...[
        "plan",
        "apply",
        "online-features",
        "push",
        "write-to-online-store",
        "historical-features",
        "materialize",
        "materialize-incremental",
      ].map((p) => `POST /v1/projects/{project}/${p}`),
      "GET /v1/projects/{project}/materialization-jobs",
      "GET /v1/projects/{project}/materialization-jobs/{id}",
      ...Object.keys(NAMES).flatMap((c) => [
        `GET /v1/projects/{project}/${c}`,
        `GET /v1/projects/{project}/${c}/{name}`,
        `GET /v1/projects/{project}/${c}/{name}/versions`,
      ]),
    ];
    expect(required.filter((r) => !listed.has(r))).toEqual([]);
    for (const extra of ["/openapi.json", "/docs"])
      if (!listed.has(`GET ${extra}`)) endpoints.push({ method: "GET", path: extra });

    const bases = validBodies(await exampleDefinitions());
    const exampleBefore = await lookupState();
    let state = await storeState();

    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let n = 0;
    let stateMs = 0;
    let changes = 0;
    const perEndpoint: string[] = [];
    let slowest = { ms: 0, what: "" };
    const fail = (i: number, c: FuzzCase, why: string) => {
      failures.push(`#${i} seed ${SEED}: ${why}\n    ${preview(c)}`);
    };

    for (const e of endpoints) {
      const e0 = performance.now();
      const n0 = n;
      for (const c of casesFor(rng, e, bases)) {
        const i = n++;
        let a: Answer | "timeout";
        try {
          a = await send(t.app, c);
        } catch (err) {
          fail(i, c, `the request threw: ${(err as Error).message}`);
          continue;
        }
        if (a === "timeout") {
          fail(i, c, `no answer within ${BOUND_MS} ms`);
          continue;
        }
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        if (process.env.LARDER_FUZZ_VERBOSE)
          console.log(`#${i} ${a.status} ${Math.round(a.ms)}ms ${preview(c).slice(0, 200)}`);
        if (a.ms > slowest.ms) slowest = { ms: a.ms, what: preview(c).slice(0, 160) };
        const problem = answerProblem(a);
        if (problem) fail(i, c, problem);
        if (c.mustFail && a.status >= 200 && a.status < 300)
          fail(i, c, `accepted a frame with a bad cell (${a.status}): ${a.text.slice(0, 200)}`);
        // Refused before any handler ran (routing, body limit, content type, the schema validators): nothing to check.
        const early = a.status === 404 || a.status === 413 || a.status === 415 || BEFORE_HANDLER.test(a.text);
        if ((isWrite(e) || c.mustFail) && !early) {
          const s0 = performance.now();
          const now = await storeState();
          stateMs += performance.now() - s0;
          if (now !== state && (a.status < 200 || a.status >= 300))
            fail(i, c, `answered ${a.status} but changed what is stored:\n${diffLines(state, now)}`);
          if (now !== state) changes++;
          state = now;
        }
      }
      perEndpoint.push(`${e.method} ${e.path}: ${n - n0} cases, ${Math.round(performance.now() - e0)} ms`);
    }
    if (process.env.LARDER_FUZZ_VERBOSE)
      console.log(`state checks ${Math.round(stateMs)} ms\n${perEndpoint.join("\n")}`);

    const exampleAfter = await lookupState();
    const summary = [...statuses]
      .sort(([x], [y]) => x - y)
      .map(([s, k]) => `${s}×${k}`)
      .join(" ");
    console.log(
      `fuzz: ${n} requests to ${endpoints.length} endpoints; statuses ${summary}; ${changes} successful writes changed the stores; slowest ${Math.round(slowest.ms)} ms: ${slowest.what}`,
    );
    if (failures.length) console.log(`fuzz failures (seed ${SEED}):\n${failures.slice(0, 40).join("\n")}`);
    expect(n).toBeGreaterThanOrEqual(MIN_CASES);
    expect(failures.slice(0, 20)).toEqual([]);
    // The example entities (only ever in frames that must fail) have the values they had before the fuzz.
    expect(exampleRows(exampleAfter)).toEqual(exampleRows(exampleBefore));
  }, 120_000);
});

/** The rows of the lookup answer about the example entities (drivers 1001 and 1002, customers C100 and C101). */
function exampleRows(text: string): unknown {
  const body = JSON.parse(text) as { results: { values: unknown[]; statuses: string[]; event_timestamps: string[] }[] };
  return [0, 1].map((r) => body.results.map((res) => [res.values[r], res.statuses[r], res.event_timestamps[r]]));
}

function diffLines(a: string, b: string): string {
  const x = a.split("\n");
  const y = b.split("\n");
  return x
    .map((l, i) => (l === y[i] ? "" : `    - ${l.slice(0, 300)}\n    + ${(y[i] ?? "").slice(0, 300)}`))
    .filter(Boolean)
    .join("\n");
}

describe("fuzz with API keys on", () => {
  let ta: TestContext;
  const keys: Record<string, string> = {};
  beforeAll(async () => {
    ta = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo", auth: true });
    keys.read = (await ta.keys!.store.create({ scope: "read" })).key;
    keys.otherProject = (await ta.keys!.store.create({ scope: "admin", project: "other" })).key;
  }, 60_000);
  afterAll(async () => ta?.close());

  it("answers missing, malformed, unknown and under-scoped keys with 401/403 in the JSON error shape", async () => {
    const rng = new Rng(SEED ^ 0x5eed);
    const doc = (await (await ta.app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { "x-larder-scope"?: string }>>;
    };
    // what each endpoint needs, as its route declares it (src/http/access.ts)
    const endpoints = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([m, op]) => ({ method: m.toUpperCase(), path, scope: op["x-larder-scope"] })),
    );
    const bases = validBodies(await exampleDefinitions());
    const badAuth: (string | undefined)[] = [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      "bearer lk_",
      "Basic dXNlcjpwYXNz",
      `Bearer lk_00000000_${"a".repeat(40)}`,
      `Bearer ${"k".repeat(20_000)}`,
      "Bearer a b",
      "Bearer \t lk_x_y \t",
      "Token xyz",
      "Bearer lk_\u00e9_\u00fc",
      "Bearer %00",
      `Bearer ${keys.read}x`,
    ];
    const failures: string[] = [];
    let n = 0;
    for (const e of endpoints) {
      expect(["public", "read", "write", "admin"], `${e.method} ${e.path}`).toContain(e.scope);
      const isPublic = e.scope === "public";
      const needsMore = e.scope === "write" || e.scope === "admin";
      const cases: { auth: string | undefined; expect?: number }[] = [
        ...badAuth.map((auth) => ({ auth, expect: isPublic ? undefined : 401 })),
        { auth: `Bearer ${keys.read}`, expect: needsMore ? 403 : undefined },
        { auth: `Bearer ${keys.otherProject}` },
      ];
      for (const { auth, expect: want } of cases) {
        const params = goodParams(rng, e);
        const base = bases[e.path];
        const body =
          e.method !== "POST" ? undefined : toJson(base && rng.chance(0.5) ? rng.pick(base) : randValue(rng, 2));
        const c: FuzzCase = {
          label: `authorization ${JSON.stringify(auth?.slice(0, 60))}`,
          method: e.method,
          path: fill(e.path, params),
          body,
          headers: auth === undefined ? {} : { authorization: auth },
        };
        const i = n++;
        const a = await send(ta.app, c);
        if (a === "timeout") failures.push(`#${i}: no answer within ${BOUND_MS} ms\n    ${preview(c)}`);
        else {
          const problem =
            answerProblem(a) ?? (want && a.status !== want ? `answered ${a.status}, not ${want}` : undefined);
          if (problem) failures.push(`#${i} seed ${SEED}: ${problem}\n    ${preview(c)}`);
        }
      }
    }
    console.log(`fuzz with keys: ${n} requests to ${endpoints.length} endpoints`);
    expect(failures.slice(0, 20)).toEqual([]);
  }, 60_000);
});

describe("regressions found by the fuzz", () => {
  const post = (path: string, body: unknown) => t.call("POST", path, body);
  const expect400 = (r: { status: number; body: unknown }, pattern: RegExp) => {
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(ErrorBody.parse(r.body).error.message).toMatch(pattern);
  };
  const typedRow = (id: number, cells: Record<string, unknown>) => ({
    feature_view_name: "typed",
    df: Object.fromEntries(
      Object.entries({ ...typedFrame(), driver_id: [id, id + 1], ...cells }).map(([k, v]) => [k, [v[0], v[1]]]),
    ),
  });
  const registryVersion = async (project: string) =>
    (await client.query("SELECT registry_version FROM larder.projects WHERE name = $1", [project])).rows[0]
      ?.registry_version;

  it("a body is read as JSON whatever its content-type says, as Feast's server reads it", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "", null]) {
      const r = await send(t.app, {
        label: String(type),
        method: "POST",
        path: "/get-online-features",
        contentType: type,
        body: toJson(LOOKUP),
      });
      expect(r).not.toBe("timeout");
      const a = r as Answer;
      expect(a.status, a.text).toBe(200);
      expect(JSON.parse(a.text).metadata.feature_names[0]).toBe("driver_id");
    }
  });

  it("a NUL character in a name, a query or a value is a 400 (Postgres refuses it), not a 500", async () => {
    for (const path of [
      "/v1/projects/demo/data-sources/%00",
      "/v1/projects/demo/feature-views/a%00b/versions",
      "/v1/projects/demo/materialization-jobs?feature_view=%00",
    ])
      expect400(await t.call("GET", path), /invalid value: invalid byte sequence/);
    const before = await registryVersion(APPLY_PROJECT);
    const defs = await exampleDefinitions();
    defs.feature_views[0].description = "a\u0000b";
    expect400(await post(`/v1/projects/${APPLY_PROJECT}/apply`, defs), /invalid byte sequence/);
    expect(await registryVersion(APPLY_PROJECT)).toBe(before);
    expect400(
      await post("/v1/projects/demo/historical-features", {
        features: ["trips:rating"],
        entity_df: { driver_id: [1001], customer_id: ["\u0000"], event_timestamp: [TS1] },
      }),
      /invalid byte sequence/,
    );
  });

  it("timestamps outside years 0001–9999 are a 400 naming the field, not a 500 from Date", async () => {
    expect400(await post("/materialize", { start_ts: 0, end_ts: 1e300 }), /end_ts: 1e\+300 is out of range/);
    expect400(await post("/materialize-incremental", { end_ts: -4.007145052310079e22 }), /out of range/);
    expect400(
      await post("/write-to-online-store", typedRow(7100, { event_timestamp: [TS1, 1e300] })),
      /df\.event_timestamp\[1\]: 1e\+300 is out of range/,
    );
    expect400(await post("/write-to-online-store", typedRow(7100, { ts: [1e300, 0] })), /df\.ts\[0\]: .*out of range/);
    expect400(
      await post("/push", { push_source_name: "typed_push", df: typedRow(7100, { created: [TS1, -1e15] }).df }),
      /df\.created\[1\]/,
    );
  });

  it("reads years 0001–0099 as written (not as 1901–1999), and refuses UTC offsets beyond ±23:59", async () => {
    const old = "0050-06-01T12:00:00Z";
    const r = await post("/write-to-online-store", typedRow(7100, { ts: [old, "9999-12-31T23:59:59Z"] }));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const got = await post("/get-online-features", { features: ["typed:ts"], entities: { driver_id: [7100, 7101] } });
    expect(got.body.results[1].values).toEqual([Date.parse(old) / 1000, Date.parse("9999-12-31T23:59:59Z") / 1000]);
    expect(Date.parse(old)).toBeLessThan(Date.parse("0100-01-01T00:00:00Z"));
    expect400(
      await post("/write-to-online-store", typedRow(7100, { event_timestamp: [TS1, "2024-01-01T00:00:00+99:99"] })),
      /invalid UTC offset/,
    );
  });

  it("a ttl beyond what microseconds can hold exactly is an invalid definition, not a 500 from Postgres", async () => {
    for (const ttl of [1e300, "99999999999999999999999999d"]) {
      const defs = await exampleDefinitions();
      defs.feature_views[0].ttl = ttl;
      const r = await post(`/v1/projects/${APPLY_PROJECT}/plan`, defs);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(ErrorBody.parse(r.body).error.details).toContainEqual(
        expect.objectContaining({ path: "feature_views[0].ttl", message: expect.stringMatching(/at most/) }),
      );
    }
  });

  it("a body nested 10,000 levels deep is a 400 (JSON.stringify would overflow storing or echoing it); 50 levels are kept", async () => {
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
    const withDoc = (n: number, s = "x") => toJson(typedRow(7102, { doc: [new Raw(deep(n)), null], s: [s, "y"] }));
    expect400(await post("/write-to-online-store", withDoc(10_000)), /nests deeper than 100 levels/);
    const echo = `{"features":["typed:s"],"entity_df":{"driver_id":[1],"event_timestamp":["${TS1}"],"extra":[${deep(10_000)}]}}`;
    expect400(await post("/v1/projects/demo/historical-features", echo), /nests deeper than 100 levels/);
    // 50 levels are kept; brackets inside a string are not nesting
    const r = await post("/write-to-online-store", withDoc(50, "[".repeat(500)));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const got = await post("/get-online-features", {
      features: ["typed:doc", "typed:s"],
      entities: { driver_id: [7102] },
    });
    expect(got.body.results[1].values[0]).toEqual(JSON.parse(deep(50)));
    expect(got.body.results[2].values[0]).toBe("[".repeat(500));
  });
});
